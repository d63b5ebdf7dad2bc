//! The IAM gate against the bed, with real SDK calls signed as a stack's functions: what a
//! compromised function could try is refused with AWS's AccessDenied, and the gate says which
//! function, action and resource, and what the policy is missing. What the functions need
//! (the sweep's cursor read, say) passes.

use aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ProtocolEnum, Tag, TargetDescription, TargetTypeEnum,
};
use testbed::iam_gate::{GateStack, StackSpec};
use testbed::moto::{TestNlb, create_nlb};
use testbed::{Bed, unique_name};

/// A stack whose calls here are expected to be refused: nothing checks its denials on drop.
struct Probe {
    gate: GateStack,
    sdk: aws_config::SdkConfig,
    admin: aws_config::SdkConfig,
    pool: TestNlb,
    outside: TestNlb,
    table: String,
}

impl Probe {
    async fn new() -> Self {
        let bed = Bed::get();
        let admin = bed.sdk_config().await;
        let pool = create_nlb(&admin, &unique_name("gate-pool")).await;
        let outside = create_nlb(&admin, &unique_name("gate-other")).await;
        let table = unique_name("gate-claims");
        nlb_port_pool::adapters::dynamo::table::create_table(
            &aws_sdk_dynamodb::Client::new(&admin),
            &table,
        )
        .await
        .expect("creating the claims table");
        let gate = GateStack::register(
            bed,
            &StackSpec {
                stack_name: table.clone(),
                cluster: "bed".into(),
                pool_nlb_arns: vec![pool.arn.clone()],
                vpc_id: pool.vpc_id.clone(),
                table: table.clone(),
                bus: Some(table.clone()),
            },
        )
        .await
        .expect("registering with the gate");
        let sdk = gate.sdk_config(bed).await;
        Self {
            gate,
            sdk,
            admin,
            pool,
            outside,
            table,
        }
    }

    /// ELBv2 as function `function` of the stack.
    fn elb(&self, function: &str) -> aws_sdk_elasticloadbalancingv2::Client {
        let mut config = aws_sdk_elasticloadbalancingv2::config::Builder::from(&self.sdk);
        config.set_app_name(nlb_port_pool::adapters::aws::sdk::app_name(function));
        aws_sdk_elasticloadbalancingv2::Client::from_conf(config.build())
    }

    fn admin_elb(&self) -> aws_sdk_elasticloadbalancingv2::Client {
        aws_sdk_elasticloadbalancingv2::Client::new(&self.admin)
    }

    /// A target group and a listener on the pool NLB, made by someone else (untagged, or
    /// tagged as another cluster's).
    async fn foreign_listener(&self, tags: &[(&str, &str)]) -> (String, String) {
        let elb = self.admin_elb();
        let tg = elb
            .create_target_group()
            .name(unique_name("npp-foreign"))
            .protocol(ProtocolEnum::Tcp)
            .port(80)
            .vpc_id(&self.pool.vpc_id)
            .target_type(TargetTypeEnum::Ip)
            .set_tags(Some(tags.iter().map(|(k, v)| tag(k, v)).collect()))
            .send()
            .await
            .expect("a foreign target group");
        let tg_arn = tg.target_groups()[0]
            .target_group_arn()
            .expect("arn")
            .to_owned();
        let listener = elb
            .create_listener()
            .load_balancer_arn(&self.pool.arn)
            .protocol(ProtocolEnum::Tcp)
            .port(i32::from(40000 + (rand_u16() % 20000)))
            .default_actions(forward(&tg_arn))
            .send()
            .await
            .expect("a foreign listener");
        let listener_arn = listener.listeners()[0]
            .listener_arn()
            .expect("arn")
            .to_owned();
        (listener_arn, tg_arn)
    }

    /// The gate's record of the last refusal of `action`.
    async fn denial_of(&self, action: &str) -> testbed::iam_gate::Denial {
        let denials = self.gate.denials().await.expect("denials");
        denials
            .into_iter()
            .rev()
            .find(|d| d.action.as_deref() == Some(action))
            .unwrap_or_else(|| panic!("the gate recorded no refusal of {action}"))
    }
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

fn project_tags(cluster: &str) -> Vec<Tag> {
    vec![
        tag("nlb-port-pool/managed", "true"),
        tag("nlb-port-pool/cluster", cluster),
    ]
}

fn forward(tg: &str) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(tg)
        .build()
}

fn rand_u16() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) as u16
}

/// ELBv2's refusal (query protocol): `AccessDenied`.
fn assert_denied<E: ProvideErrorMetadata + std::fmt::Debug, T: std::fmt::Debug>(
    what: &str,
    result: Result<T, E>,
) {
    assert_refused(what, result, "AccessDenied");
}

/// DynamoDB's and EventBridge's refusal (JSON protocols): `AccessDeniedException`.
fn assert_denied_json<E: ProvideErrorMetadata + std::fmt::Debug, T: std::fmt::Debug>(
    what: &str,
    result: Result<T, E>,
) {
    assert_refused(what, result, "AccessDeniedException");
}

/// EventBridge's refusal of an entry its role may not put (a source or detail-type its
/// condition does not allow): HTTP 200, `FailedEntryCount` 1, the entry's `code`.
fn assert_entry_refused<E: std::fmt::Debug>(
    what: &str,
    result: Result<aws_sdk_eventbridge::operation::put_events::PutEventsOutput, E>,
    code: &str,
) {
    let out = result.unwrap_or_else(|e| panic!("{what}: refused as a whole, not by entry: {e:?}"));
    assert_eq!(out.failed_entry_count(), 1, "{what}: {out:?}");
    assert_eq!(out.entries()[0].error_code(), Some(code), "{what}: {out:?}");
}

fn assert_refused<E: ProvideErrorMetadata + std::fmt::Debug, T: std::fmt::Debug>(
    what: &str,
    result: Result<T, E>,
    code: &str,
) {
    let err = result.expect_err(what);
    assert_eq!(err.code(), Some(code), "{what}: {err:?}");
}

#[tokio::test]
async fn a_function_cannot_tag_modify_or_delete_a_foreign_listener() {
    // GIVEN a listener on a pool NLB that the project did not make
    let probe = Probe::new().await;
    let (listener, _) = probe.foreign_listener(&[]).await;

    // WHEN allocate tries to tag it as the project's, THEN AWS's AccessDenied
    let allocate = probe.elb("allocate");
    assert_denied(
        "tagging a foreign listener",
        allocate
            .add_tags()
            .resource_arns(&listener)
            .set_tags(Some(project_tags("bed")))
            .send()
            .await,
    );
    // AND the gate names the function, the action, the resource in AWS's /net/ form, and why
    let denial = probe.denial_of("elasticloadbalancing:AddTags").await;
    assert_eq!(denial.function.as_deref(), Some("allocate"));
    assert_eq!(denial.role.as_deref(), Some("AllocateRole"));
    let resource = denial.resource.clone().unwrap_or_default();
    assert!(resource.contains(":listener/net/"), "{resource}");
    assert!(
        denial.missing.contains("elasticloadbalancing:CreateAction"),
        "{denial}"
    );

    // AND modifying or deleting it is refused to every function that may delete
    for function in [
        "allocate",
        "release",
        "sync-targets",
        "sweep",
        "pool",
        "reachable",
    ] {
        let elb = probe.elb(function);
        assert_denied(
            "deleting a foreign listener",
            elb.delete_listener().listener_arn(&listener).send().await,
        );
        assert_denied(
            "modifying a foreign listener",
            elb.modify_listener()
                .listener_arn(&listener)
                .port(1)
                .send()
                .await,
        );
    }
    let still_there = probe
        .admin_elb()
        .describe_listeners()
        .listener_arns(&listener)
        .send()
        .await
        .expect("the listener is still there");
    assert_eq!(still_there.listeners().len(), 1);
}

#[tokio::test]
async fn no_listener_on_an_nlb_outside_the_pools_nor_without_the_project_tags() {
    let probe = Probe::new().await;
    let (_, tg) = probe.foreign_listener(&[]).await;
    let allocate = probe.elb("allocate");
    let create = |nlb: &str, tags: Vec<Tag>| {
        allocate
            .create_listener()
            .load_balancer_arn(nlb)
            .protocol(ProtocolEnum::Tcp)
            .port(i32::from(1000 + rand_u16() % 20000))
            .default_actions(forward(&tg))
            .set_tags(Some(tags))
    };
    assert_denied(
        "a listener on an NLB outside the pools",
        create(&probe.outside.arn, project_tags("bed")).send().await,
    );
    let denial = probe.denial_of("elasticloadbalancing:CreateListener").await;
    assert!(
        denial
            .resource
            .as_deref()
            .unwrap_or_default()
            .contains(":loadbalancer/net/"),
        "{denial}"
    );
    assert_denied(
        "an untagged listener on a pool NLB",
        create(&probe.pool.arn, vec![]).send().await,
    );
    assert_denied(
        "a listener tagged as another cluster's",
        create(&probe.pool.arn, project_tags("other")).send().await,
    );
    assert_denied(
        "release making a listener",
        probe
            .elb("release")
            .create_listener()
            .load_balancer_arn(&probe.pool.arn)
            .protocol(ProtocolEnum::Tcp)
            .port(1234)
            .default_actions(forward(&tg))
            .set_tags(Some(project_tags("bed")))
            .send()
            .await,
    );
}

#[tokio::test]
async fn a_target_group_of_another_cluster_is_out_of_reach() {
    let probe = Probe::new().await;
    let (_, theirs) = probe
        .foreign_listener(&[
            ("nlb-port-pool/managed", "true"),
            ("nlb-port-pool/cluster", "another-cluster"),
        ])
        .await;
    let target = TargetDescription::builder().id("10.0.0.9").port(80).build();
    for function in ["sync-targets", "allocate", "sweep", "pool", "reachable"] {
        let elb = probe.elb(function);
        assert_denied(
            "registering into another cluster's target group",
            elb.register_targets()
                .target_group_arn(&theirs)
                .targets(target.clone())
                .send()
                .await,
        );
    }
    assert_denied(
        "deleting another cluster's target group",
        probe
            .elb("release")
            .delete_target_group()
            .target_group_arn(&theirs)
            .send()
            .await,
    );
    let denial = probe
        .denial_of("elasticloadbalancing:DeleteTargetGroup")
        .await;
    assert!(denial.missing.contains("another-cluster"), "{denial}");
}

#[tokio::test]
async fn the_forwarder_puts_its_own_events_on_its_own_bus_only() {
    let probe = Probe::new().await;
    let mut config = aws_sdk_eventbridge::config::Builder::from(&probe.sdk);
    config.set_app_name(nlb_port_pool::adapters::aws::sdk::app_name("forwarder"));
    let events = aws_sdk_eventbridge::Client::from_conf(config.build());
    let put = |bus: &str, source: &str| {
        events.put_events().entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name(bus)
                .source(source)
                .detail_type("Service Changed")
                .detail("{}")
                .build(),
        )
    };
    let other_bus = unique_name("gate-bus");
    assert_denied_json(
        "another bus",
        put(&other_bus, nlb_port_pool::contract::event::EVENT_SOURCE)
            .send()
            .await,
    );
    assert_entry_refused(
        "another source",
        put(&probe.table, "aws.events").send().await,
        "NotAuthorizedForSourceException",
    );
    let denial = probe.denial_of("events:PutEvents").await;
    assert!(denial.missing.contains("events:source"), "{denial}");
}

#[tokio::test]
async fn the_sweep_reads_its_cursor_and_a_stranger_is_refused() {
    let probe = Probe::new().await;
    let mut config = aws_sdk_dynamodb::config::Builder::from(&probe.sdk);
    config.set_app_name(nlb_port_pool::adapters::aws::sdk::app_name("sweep"));
    let sweep = aws_sdk_dynamodb::Client::from_conf(config.build());
    let key = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.to_owned());
    // The sweep's role has GetItem on its table (it had not: every run failed on AWS).
    sweep
        .get_item()
        .table_name(&probe.table)
        .key("pk", key("sweep"))
        .key("sk", key("cursor"))
        .send()
        .await
        .expect("the sweep reads its cursor");
    assert!(probe.gate.denials().await.expect("denials").is_empty());

    // A function whose key names no registered stack is refused whatever it asks.
    let stranger = Bed::get()
        .sdk_config_signed(Bed::get().aws_endpoint(), "AKIASTRANGER", None)
        .await;
    let mut config = aws_sdk_dynamodb::config::Builder::from(&stranger);
    config.set_app_name(nlb_port_pool::adapters::aws::sdk::app_name("sweep"));
    assert_denied_json(
        "an unregistered stack",
        aws_sdk_dynamodb::Client::from_conf(config.build())
            .get_item()
            .table_name(&probe.table)
            .key("pk", key("sweep"))
            .key("sk", key("cursor"))
            .send()
            .await,
    );
}

/// An NLB named `npp-...` in `vpc`'s subnets of `nlb`, made by someone else with `tags`.
async fn someone_elses_npp_nlb(probe: &Probe, tags: &[(&str, &str)]) -> String {
    let elb = probe.admin_elb();
    let described = elb
        .describe_load_balancers()
        .load_balancer_arns(&probe.outside.arn)
        .send()
        .await
        .expect("describing an NLB");
    let subnets: Vec<String> = described.load_balancers()[0]
        .availability_zones()
        .iter()
        .filter_map(|z| z.subnet_id().map(str::to_owned))
        .collect();
    let made = elb
        .create_load_balancer()
        .name(unique_name("npp-x"))
        .r#type(aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum::Network)
        .set_subnets(Some(subnets))
        .set_tags(Some(tags.iter().map(|(k, v)| tag(k, v)).collect()))
        .send()
        .await
        .expect("someone else's NLB");
    made.load_balancers()[0]
        .load_balancer_arn()
        .expect("arn")
        .to_owned()
}

#[tokio::test]
async fn only_the_pool_function_makes_nlbs_and_it_deletes_only_its_clusters() {
    // GIVEN a stack, and npp- NLBs that are not its cluster's: another cluster's, untagged
    let probe = Probe::new().await;
    let theirs = someone_elses_npp_nlb(
        &probe,
        &[
            ("nlb-port-pool/managed", "true"),
            ("nlb-port-pool/cluster", "another-cluster"),
        ],
    )
    .await;
    let untagged = someone_elses_npp_nlb(&probe, &[]).await;
    let subnets: Vec<String> = probe
        .admin_elb()
        .describe_load_balancers()
        .load_balancer_arns(&probe.outside.arn)
        .send()
        .await
        .expect("describing")
        .load_balancers()[0]
        .availability_zones()
        .iter()
        .filter_map(|z| z.subnet_id().map(str::to_owned))
        .collect();
    let create = |function: &str, tags: Vec<Tag>| {
        probe
            .elb(function)
            .create_load_balancer()
            .name(unique_name("npp-made"))
            .r#type(aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum::Network)
            .set_subnets(Some(subnets.clone()))
            .set_tags(Some(tags))
    };

    // WHEN the other functions try to make an NLB, or the pool function without the tags
    // THEN each is refused
    for function in ["allocate", "release", "sync-targets", "sweep", "reachable"] {
        assert_denied(
            "an NLB made by a function that is not the pool function",
            create(function, project_tags("bed")).send().await,
        );
    }
    assert_denied(
        "an NLB without the project's tags",
        create("pool", vec![tag("team", "games")]).send().await,
    );
    assert_denied(
        "an NLB tagged as another cluster's",
        create("pool", project_tags("another-cluster")).send().await,
    );

    // AND the pool function may neither delete nor modify an NLB that is not its cluster's,
    // nor the pool's pre-made NLB
    for nlb in [&theirs, &untagged, &probe.pool.arn] {
        let elb = probe.elb("pool");
        assert_denied(
            "deleting an NLB that is not this cluster's",
            elb.delete_load_balancer()
                .load_balancer_arn(nlb)
                .send()
                .await,
        );
        assert_denied(
            "changing an NLB that is not this cluster's",
            elb.modify_load_balancer_attributes()
                .load_balancer_arn(nlb)
                .attributes(
                    aws_sdk_elasticloadbalancingv2::types::LoadBalancerAttribute::builder()
                        .key("load_balancing.cross_zone.enabled")
                        .value("true")
                        .build(),
                )
                .send()
                .await,
        );
    }
    // AND no function opens a listener on the untagged npp- NLB
    let (_, tg) = probe.foreign_listener(&[]).await;
    assert_denied(
        "a listener on an npp- NLB without the project's tags",
        probe
            .elb("allocate")
            .create_listener()
            .load_balancer_arn(&untagged)
            .protocol(ProtocolEnum::Tcp)
            .port(30001)
            .default_actions(forward(&tg))
            .set_tags(Some(project_tags("bed")))
            .send()
            .await,
    );
}

#[tokio::test]
async fn only_allocating_functions_ask_the_pool_to_grow() {
    // GIVEN a stack's bus
    let probe = Probe::new().await;
    aws_sdk_eventbridge::Client::new(&probe.admin)
        .create_event_bus()
        .name(&probe.table)
        .send()
        .await
        .expect("the bus");
    let put = |function: &str, source: &str, detail_type: &str| {
        let mut config = aws_sdk_eventbridge::config::Builder::from(&probe.sdk);
        config.set_app_name(nlb_port_pool::adapters::aws::sdk::app_name(function));
        aws_sdk_eventbridge::Client::from_conf(config.build())
            .put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .event_bus_name(&probe.table)
                    .source(source)
                    .detail_type(detail_type)
                    .detail(r#"{"version":1,"cluster":"bed","pool":"default","reason":"t"}"#)
                    .build(),
            )
            .send()
    };

    // WHEN the function that does not allocate puts a signal, or allocate puts something else
    // THEN each is refused
    for signal in ["Pool Low", "Targets Registered"] {
        assert_denied_json(
            "a signal from the release function",
            put("release", "nlb-port-pool.functions", signal).await,
        );
    }
    // (allocate may put events on the bus: AWS refuses these entry by entry, HTTP 200)
    assert_entry_refused(
        "allocate posing as the forwarder",
        put("allocate", "nlb-port-pool.forwarder", "Service Changed").await,
        "NotAuthorizedForSourceException",
    );
    assert_entry_refused(
        "allocate with another detail-type",
        put("allocate", "nlb-port-pool.functions", "Service Changed").await,
        "NotAuthorizedForDetailTypeException",
    );
}
