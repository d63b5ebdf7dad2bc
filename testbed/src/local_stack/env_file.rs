//! The local stack's block in the bed's stack file (`.local/stack.env`): the bus, table, pool
//! and queues, so a shell that sources the file reaches them. The block is replaced on each
//! start and removed on stop; the bed's own lines are left as they are.

use std::path::Path;

use anyhow::{Context as _, Result};

const BEGIN: &str = "# --- local stack (testbed/bin/run-local); removed when it stops ---";
const END: &str = "# --- end of local stack ---";

/// Writes `vars` as the stack's block of `path`, replacing an earlier one.
pub fn write_block(path: &Path, vars: &[(String, String)]) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = without_block(&text);
    out.push_str(BEGIN);
    out.push('\n');
    for (k, v) in vars {
        out.push_str(&format!("export {k}={}\n", shell_quoted(v)));
    }
    out.push_str(END);
    out.push('\n');
    replace(path, &out)
}

/// `value` as one shell word: as it is when it has only safe characters, else in single
/// quotes (POOLS is JSON); [`crate::parse_env_file`] reads both back.
pub fn shell_quoted(value: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/:._-,@+=%".contains(c);
    if !value.is_empty() && value.chars().all(safe) {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// Removes the stack's block from `path`; a missing file (the bed is down) is fine.
pub fn remove_block(path: &Path) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let out = without_block(&text);
    if out != text {
        replace(path, &out)?;
    }
    Ok(())
}

fn without_block(text: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        match line {
            BEGIN => inside = true,
            END => inside = false,
            _ if !inside => {
                out.push_str(line);
                out.push('\n');
            }
            _ => {}
        }
    }
    out
}

fn replace(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("env.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_is_replaced_then_removed_leaving_the_bed_lines() {
        let dir = std::env::temp_dir().join(crate::unique_name("env-file"));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("stack.env");
        let bed = "# bed\nexport KUBECONFIG=/k\nexport AWS_REGION=us-west-2\n";
        std::fs::write(&path, bed).expect("write");

        write_block(&path, &[("BUS_NAME".into(), "a".into())]).expect("first");
        write_block(&path, &[("BUS_NAME".into(), "b".into())]).expect("second");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.starts_with(bed), "{text}");
        assert!(
            text.contains("export BUS_NAME=b\n") && !text.contains("BUS_NAME=a"),
            "{text}"
        );
        assert_eq!(text.matches(BEGIN).count(), 1, "{text}");

        remove_block(&path).expect("remove");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), bed);
        let _ = std::fs::remove_dir_all(dir);
    }
}
