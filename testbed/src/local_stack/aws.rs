//! The stack's AWS side in moto: the bus, one rule per detail-type with an SQS queue as its
//! target (standing in for the rule's Lambda target), a dead-letter queue, the claims table,
//! and a pool of `network` NLBs in one VPC.

use std::time::Duration;

use anyhow::{Context as _, Result};
use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;
use nlb_port_pool::contract::event::{DetailType, EVENT_SOURCE};
use nlb_port_pool::contract::pool_event::{FUNCTIONS_SOURCE, POOL_LOW, TARGETS_REGISTERED};

use crate::moto::{self, TestNlb};

/// Which function each (source, detail-type) goes to (template.yaml's rules).
pub const ROUTES: [(&str, &str, &str); 5] = [
    (
        EVENT_SOURCE,
        DetailType::ServiceChanged.as_str(),
        "allocate",
    ),
    (EVENT_SOURCE, DetailType::ServiceDeleted.as_str(), "release"),
    (
        EVENT_SOURCE,
        DetailType::EndpointsChanged.as_str(),
        "sync-targets",
    ),
    (FUNCTIONS_SOURCE, POOL_LOW, "pool"),
    (FUNCTIONS_SOURCE, TARGETS_REGISTERED, "reachable"),
];

/// The pool the stack makes.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// How many pre-made NLBs.
    pub nlbs: usize,
    /// The listener port range, e.g. `30000-32767`.
    pub ports: String,
    /// Listeners per NLB.
    pub quota: u32,
    /// The pool's `managed` section, if the pool function makes NLBs for it.
    pub managed: Option<ManagedSettings>,
}

/// A managed pool's limits (its NLBs are made in the stack's VPC's two subnets).
#[derive(Debug, Clone, Copy)]
pub struct ManagedSettings {
    /// NLBs kept made.
    pub min: u32,
    /// Most NLBs made.
    pub max: u32,
    /// Free listeners kept ready.
    pub spare: u32,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            nlbs: 2,
            ports: "30000-32767".into(),
            quota: 50,
            managed: None,
        }
    }
}

/// One rule and the queue behind it.
#[derive(Debug, Clone)]
pub struct Route {
    /// The events it matches: their source.
    pub source: &'static str,
    /// And their detail-type.
    pub detail_type: &'static str,
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
    /// The pool's pre-made NLBs, in `vpc_id`.
    pub nlbs: Vec<TestNlb>,
    /// The VPC of the pool.
    pub vpc_id: String,
    /// Its subnets (where made NLBs go).
    pub subnets: Vec<String>,
    /// The `POOLS` value for the functions.
    pub pools_json: String,
}

/// `Service Changed` -> `service-changed`.
pub fn slug(detail_type: &str) -> String {
    detail_type.to_ascii_lowercase().replace(' ', "-")
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
        for (source, detail_type, function) in ROUTES {
            let rule = format!("{prefix}-{}", slug(detail_type));
            let pattern = serde_json::json!({
                "source": [source],
                "detail-type": [detail_type],
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
                source,
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
        nlb_port_pool::adapters::dynamo::table::create_table(
            &aws_sdk_dynamodb::Client::new(sdk),
            &table,
        )
        .await
        .with_context(|| format!("creating table {table}"))?;
        let (nlbs, vpc_id, subnets) = moto::create_nlbs_with_subnets(sdk, prefix, pool.nlbs).await;
        let arns: Vec<&str> = nlbs.iter().map(|n| n.arn.as_str()).collect();
        let mut default = serde_json::json!({
            "nlbArns": arns, "ports": pool.ports, "listenerQuota": pool.quota
        });
        if let Some(m) = pool.managed {
            default["managed"] = serde_json::json!({
                "min": m.min, "max": m.max, "spare": m.spare, "subnets": subnets,
                "tags": {"stack": prefix}
            });
        }
        let pools_json = serde_json::json!({ "default": default }).to_string();
        nlb_port_pool::model::pool::PoolSet::from_json(&pools_json)
            .map_err(|e| anyhow::anyhow!("the pool is not usable: {e}"))?;
        Ok(Self {
            bus: prefix.to_owned(),
            routes,
            dlq_url,
            table,
            nlbs,
            vpc_id,
            subnets,
            pools_json,
        })
    }

    /// The VPC of the pool (target groups are made there).
    pub fn vpc_id(&self) -> &str {
        &self.vpc_id
    }

    /// The queue of `detail_type`.
    pub fn queue_of(&self, detail_type: &str) -> Option<&str> {
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
        let slugs: Vec<String> = ROUTES.iter().map(|(_, d, _)| slug(d)).collect();
        assert_eq!(
            slugs,
            [
                "service-changed",
                "service-deleted",
                "endpoints-changed",
                "pool-low",
                "targets-registered"
            ]
        );
        assert_eq!(
            ROUTES.map(|r| r.2),
            ["allocate", "release", "sync-targets", "pool", "reachable"]
        );
    }
}
