//! The stack's view for the invariant checker shared by the tests (`testbed::invariants`).

use testbed::invariants::World;

use super::Stack;

impl Stack {
    /// What the invariant checker reads: this stack's clients, table, NLBs and VPC, and the
    /// `namespaces` whose Services the test made.
    pub fn world(&self, namespaces: &[String]) -> World {
        World {
            admin: self.admin.clone(),
            elb: self.elb.clone(),
            dynamodb: self.dynamodb.clone(),
            table: self.table.clone(),
            nlb_arns: self.nlbs.iter().map(|n| n.arn.clone()).collect(),
            vpc_id: self.nlbs[0].vpc_id.clone(),
            namespaces: namespaces.to_vec(),
        }
    }

    /// Every breach of the invariants, in words; empty when all hold. `namespaces` are the
    /// namespaces whose Services the test made; `quota` the listeners an NLB may hold.
    pub async fn invariant_breaches(&self, namespaces: &[String], quota: usize) -> Vec<String> {
        self.world(namespaces).breaches(quota).await
    }
}
