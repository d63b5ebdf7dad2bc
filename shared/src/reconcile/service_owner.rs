//! Whose claims a run acts on: the Service's own listeners, or one pod's.

use super::Result;
use super::reconciler::Reconciler;
use crate::contract::service_model::ServiceState;
use crate::model::claims::{Claim, Owner};

impl Reconciler {
    pub(super) fn owner(&self, service: &ServiceState) -> Owner {
        Owner {
            key: service.key.clone(),
            uid: service.uid.clone(),
            pod: service.pod_name().map(str::to_owned),
        }
    }

    /// The claims of `owner`: a pod's (one prefix query), or the Service's own listeners'.
    pub(super) async fn claims_of_owner(&self, owner: &Owner) -> Result<Vec<Claim>> {
        Ok(match &owner.pod {
            Some(pod) => self.store.claims_of_pod(&owner.uid, pod).await?,
            None => {
                let mut all = self.store.claims_of(&owner.uid).await?;
                all.retain(|c| c.owner.pod.is_none());
                all
            }
        })
    }

    /// The claims of what `service` stands for (the Service, or one of its pods).
    pub(super) async fn claims_for(&self, service: &ServiceState) -> Result<Vec<Claim>> {
        self.claims_of_owner(&self.owner(service)).await
    }
}
