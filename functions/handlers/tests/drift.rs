//! What others change behind the system's back on its own resources, repaired by the next
//! reconcile.

mod common;

use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum};
use common::Stack;

#[tokio::test]
async fn a_listener_pointed_at_another_target_group_is_pointed_back() {
    // GIVEN an allocated Service whose listener someone pointed at another target group
    let stack = Stack::new("repoint", 1, "30000-30099", 50).await;
    stack.create_room("room").await;
    stack.room_pod("room", "10.4.0.1", true).await;
    stack.changed("room").await.expect("allocates");
    let (_, _, ours, listener) = stack.listeners().await.pop().expect("a listener");
    let elsewhere = stack.foreign_target_group().await;
    stack
        .elb
        .modify_listener()
        .listener_arn(&listener)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(&elsewhere)
                .build(),
        )
        .send()
        .await
        .expect("pointing the listener elsewhere");

    // WHEN the Service is reconciled
    stack.changed("room").await.expect("reconciles");

    // THEN the same listener forwards to the Service's target group again
    let (_, _, now, same) = stack.listeners().await.pop().expect("a listener");
    assert_eq!((now, same), (ours, listener));
}
