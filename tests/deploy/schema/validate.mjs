// Validates every manifest in the given files against the Kubernetes and
// Prometheus-operator schemas (kubernetes-models): unknown fields, wrong
// types and missing required fields are errors.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { DaemonSet } from "kubernetes-models/apps/v1";
import { Service } from "kubernetes-models/v1";
import { PodMonitor, PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const models = {
  "apps/v1/DaemonSet": DaemonSet,
  "v1/Service": Service,
  "monitoring.coreos.com/v1/PodMonitor": PodMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
};

let failed = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (doc.errors.length) {
      console.error(`${file}: ${doc.errors[0].message}`);
      failed++;
      continue;
    }
    const obj = doc.toJS();
    const key = `${obj.apiVersion}/${obj.kind}`;
    const Model = models[key];
    if (!Model) {
      console.error(`${file}: no schema for ${key}`);
      failed++;
      continue;
    }
    try {
      new Model(obj).validate();
      console.log(`${file}: ${key} ${obj.metadata.name} valid`);
    } catch (e) {
      console.error(`${file}: ${key} ${obj.metadata?.name}: ${e.message}`);
      failed++;
    }
  }
}
process.exit(failed ? 1 : 0);
