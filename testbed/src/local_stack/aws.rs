//! The stack's AWS side in moto: the bus, one rule per detail-type with an SQS queue as its
//! target (standing in for the rule's Lambda target), a dead-letter queue, the claims table,
//! and a pool of `network` NLBs in one VPC.

use std::time::Duration;

use anyhow::{Context as _, Result};
use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;
use nlb_port_pool::event::{DetailType, EVENT_SOURCE};

use crate::moto::{self, TestNlb};

/// Which function each detail-type goes to (template.yaml's rules).
pub const ROUTES: [(DetailType, &str); 3] = [
    (DetailType::ServiceChanged, "allocate"),
    (DetailType::ServiceDeleted, "release"),
    (DetailType::EndpointsChanged, "sync-targets"),
];

/// The pool the stack makes.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// How many NLBs.
    pub nlbs: usize,
    /// The listener port range, e.g. `30000-32767`.
    pub ports: String,
    /// Listeners per NLB.
    pub quota: u32,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            nlbs: 2,
            ports: "30000-32767".into(),
            quota: 50,
        }
    }
}

/// One rule and the queue behind it.
#[derive(Debug, Clone)]
pub struct Route {
    /// The events it matches.
    pub detail_type: DetailType,
    /// The function its events go to.
    pub function: &'static str,
    /// The rule's name (also the queue's).
    pub rule: String,
    /// The queue.
    pub queue_url: String,
}

/// What the stack made in moto.
#[derive(Debug, Clone)]
pub struct AwsStack {
    /// The custom bus.
    pub bus: String,
    /// One rule and queue per detail-type.
    pub routes: Vec<Route>,
    /// Where events go after failing `max_receives` times.
    pub dlq_url: String,
    /// The claims table.
    pub table: String,
    /// The pool's NLBs, sharing one VPC.
    pub nlbs: Vec<TestNlb>,
    /// The `POOLS` value for the functions.
    pub pools_json: String,
}

/// `Service Changed` -> `service-changed`.
pub fn slug(detail_type: DetailType) -> String {
    detail_type.as_str().to_ascii_lowercase().replace(' ', "-")
}

impl AwsStack {
    /// Creates everything, named after `prefix`; failed deliveries become visible again after
    /// `visibility` unless the delivery loop says otherwise.
    pub async fn create(
        sdk: &SdkConfig,
        prefix: &str,
        pool: &PoolSettings,
        visibility: Duration,
    ) -> Result<Self> {
        let events = aws_sdk_eventbridge::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        events
            .create_event_bus()
            .name(prefix)
            .send()
            .await
            .with_context(|| format!("creating bus {prefix}"))?;
        let mut routes = Vec::new();
        for (detail_type, function) in ROUTES {
            let rule = format!("{prefix}-{}", slug(detail_type));
            let pattern = serde_json::json!({
                "source": [EVENT_SOURCE],
                "detail-type": [detail_type.as_str()],
            });
            let queue_url = moto::queue_behind_rule(sdk, prefix, &rule, &pattern.to_string()).await;
            sqs.set_queue_attributes()
                .queue_url(&queue_url)
                .attributes(
                    QueueAttributeName::VisibilityTimeout,
                    visibility.as_secs().max(1).to_string(),
                )
                .send()
                .await
                .with_context(|| format!("setting the visibility timeout of {rule}"))?;
            routes.push(Route {
                detail_type,
                function,
                rule,
                queue_url,
            });
        }
        let dlq_url = sqs
            .create_queue()
            .queue_name(format!("{prefix}-dlq"))
            .send()
            .await
            .context("creating the dead-letter queue")?
            .queue_url
            .context("CreateQueue answered without a URL")?;
        let table = format!("{prefix}-claims");
        nlb_port_pool::claims::table::create_table(&aws_sdk_dynamodb::Client::new(sdk), &table)
            .await
            .with_context(|| format!("creating table {table}"))?;
        let nlbs = moto::create_nlbs(sdk, prefix, pool.nlbs.max(1)).await;
        let arns: Vec<&str> = nlbs.iter().map(|n| n.arn.as_str()).collect();
        let pools_json = serde_json::json!({
            "default": {"nlbArns": arns, "ports": pool.ports, "listenerQuota": pool.quota}
        })
        .to_string();
        nlb_port_pool::pool::PoolSet::from_json(&pools_json)
            .map_err(|e| anyhow::anyhow!("the pool is not usable: {e}"))?;
        Ok(Self {
            bus: prefix.to_owned(),
            routes,
            dlq_url,
            table,
            nlbs,
            pools_json,
        })
    }

    /// The VPC of the pool (target groups are made there).
    pub fn vpc_id(&self) -> &str {
        self.nlbs.first().map_or("", |n| n.vpc_id.as_str())
    }

    /// The queue of `detail_type`.
    pub fn queue_of(&self, detail_type: DetailType) -> Option<&str> {
        self.routes
            .iter()
            .find(|r| r.detail_type == detail_type)
            .map(|r| r.queue_url.as_str())
    }

    /// Removes the bus, rules, queues, table and NLBs, ignoring failures (a shared bed keeps
    /// less state; a bed that goes down anyway loses nothing).
    pub async fn delete(&self, sdk: &SdkConfig) {
        let events = aws_sdk_eventbridge::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(sdk);
        for r in &self.routes {
            let _ = events
                .remove_targets()
                .rule(&r.rule)
                .event_bus_name(&self.bus)
                .ids("queue")
                .send()
                .await;
            let _ = events
                .delete_rule()
                .name(&r.rule)
                .event_bus_name(&self.bus)
                .send()
                .await;
            let _ = sqs.delete_queue().queue_url(&r.queue_url).send().await;
        }
        let _ = sqs.delete_queue().queue_url(&self.dlq_url).send().await;
        let _ = events.delete_event_bus().name(&self.bus).send().await;
        let _ = aws_sdk_dynamodb::Client::new(sdk)
            .delete_table()
            .table_name(&self.table)
            .send()
            .await;
        for n in &self.nlbs {
            let _ = elb
                .delete_load_balancer()
                .load_balancer_arn(&n.arn)
                .send()
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_the_template() {
        let slugs: Vec<String> = ROUTES.iter().map(|(d, _)| slug(*d)).collect();
        assert_eq!(
            slugs,
            ["service-changed", "service-deleted", "endpoints-changed"]
        );
        assert_eq!(ROUTES.map(|r| r.1), ["allocate", "release", "sync-targets"]);
    }
}
