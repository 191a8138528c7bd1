// Validates Kubernetes objects (a JSON array on stdin) against the schemas of their
// kinds: Kubernetes' own (kubernetes-models) and the CRDs of Strimzi, KEDA and the
// Prometheus Operator (@kubernetes-models/*), as each model's validate() checks them.
// Prints one line per problem and exits 1 if any; make installs the packages (npm ci).
import { readFileSync } from "node:fs";

const PACKAGES = {
  "kafka.strimzi.io": "@kubernetes-models/strimzi-kafka-operator",
  "keda.sh": "@kubernetes-models/keda",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};

async function modelOf(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const pkg = PACKAGES[group];
  let path;
  if (pkg) path = `${pkg}/${group}/${version}/${kind}`;
  else if (group === "") path = `kubernetes-models/${version}/${kind}`;
  else path = `kubernetes-models/${group}/${version}/${kind}`;
  const module = await import(path);
  return module[kind];
}

const objects = JSON.parse(readFileSync(0, "utf8"));
let problems = 0;
for (const object of objects) {
  const name = `${object.kind}/${object.metadata?.name}`;
  let Model;
  try {
    Model = await modelOf(object.apiVersion, object.kind);
  } catch (error) {
    console.log(`${name}: no schema for ${object.apiVersion} ${object.kind}`);
    problems += 1;
    continue;
  }
  try {
    new Model(object).validate();
  } catch (error) {
    console.log(`${name}: ${error.message}`);
    problems += 1;
  }
}
console.log(`${objects.length} objects, ${problems} problems`);
process.exit(problems ? 1 : 0);
