//! AWS: the SDK's configuration (`sdk`), its errors (`error`), and the model's traits on
//! ELBv2 (`elb`), ACM (`certificates`) and the configuration lookups (`config_lookups`).

mod certificates;
mod config_lookups;
mod elb;
pub mod error;
pub mod sdk;

pub use certificates::AwsCertificates;
pub use config_lookups::AwsConfigLookups;
pub use elb::{AwsLoadBalancing, CallRate};
