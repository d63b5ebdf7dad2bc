//! [`GoneBeforeDelete`]: another run deleting the same listener or target group between this
//! run's Describe and its Delete, made certain.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use super::{Answer, ElbCall, ElbRule};

/// Before the first DeleteListener and DeleteTargetGroup of each resource goes on, the
/// resource is deleted (with `elb`, the bed's admin), as a concurrent release or sweep would:
/// the call then meets a resource that is gone, and AWS (the IAM gate) answers it
/// `AccessDenied`, its tag conditions judged against no tags.
#[derive(Debug)]
pub struct GoneBeforeDelete {
    elb: aws_sdk_elasticloadbalancingv2::Client,
    done: Mutex<BTreeSet<String>>,
    /// Resources deleted ahead of the call.
    pub deleted: AtomicUsize,
}

impl GoneBeforeDelete {
    /// A rule deleting ahead with `elb`.
    pub fn new(elb: aws_sdk_elasticloadbalancingv2::Client) -> Self {
        Self {
            elb,
            done: Mutex::new(BTreeSet::new()),
            deleted: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl ElbRule for GoneBeforeDelete {
    async fn answer(&self, call: &ElbCall) -> Option<Answer> {
        let arn = match call.action.as_str() {
            "DeleteListener" => call.param("ListenerArn"),
            "DeleteTargetGroup" => call.param("TargetGroupArn"),
            _ => None,
        }?;
        let first = self
            .done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(arn.to_owned());
        if first {
            let deleted = match call.action.as_str() {
                "DeleteListener" => self
                    .elb
                    .delete_listener()
                    .listener_arn(arn)
                    .send()
                    .await
                    .is_ok(),
                _ => self
                    .elb
                    .delete_target_group()
                    .target_group_arn(arn)
                    .send()
                    .await
                    .is_ok(),
            };
            if deleted {
                self.deleted.fetch_add(1, Ordering::Relaxed);
            }
        }
        None
    }
}
