//! An inclusive range of listener ports, as pools configure them.

use std::fmt;
use std::str::FromStr;

/// An inclusive range of listener ports, e.g. `30000-32767`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    first: u16,
    last: u16,
}

impl PortRange {
    /// `first..=last`; both must be valid listener ports and `first <= last`.
    pub fn new(first: u16, last: u16) -> Result<Self, String> {
        if first == 0 {
            return Err("port 0 is not a listener port".to_owned());
        }
        if first > last {
            return Err(format!("range {first}-{last} is empty (first > last)"));
        }
        Ok(Self { first, last })
    }

    /// The lowest port.
    pub fn first(&self) -> u16 {
        self.first
    }

    /// The highest port.
    pub fn last(&self) -> u16 {
        self.last
    }

    /// How many ports the range holds.
    pub fn len(&self) -> u32 {
        u32::from(self.last) - u32::from(self.first) + 1
    }

    /// Never true: a range holds at least one port.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `port` lies in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }

    /// The `index`-th port of the range, wrapping around.
    pub fn nth_wrapping(&self, index: u32) -> u16 {
        // len() >= 1 and the sum stays <= u16::MAX, so the conversion cannot fail.
        let offset = index % self.len();
        u16::try_from(u32::from(self.first) + offset).unwrap_or(self.last)
    }
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("port range {s:?} is not of the form FIRST-LAST"))?;
        let parse = |p: &str| {
            p.trim()
                .parse::<u16>()
                .map_err(|e| format!("port range {s:?}: {p:?} is not a port number ({e})"))
        };
        Self::new(parse(a)?, parse(b)?).map_err(|e| format!("port range {s:?}: {e}"))
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}
