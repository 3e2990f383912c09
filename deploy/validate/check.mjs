// Offline checks of LeadFlow's deployment files, run by the deploy tests (deploy/validate/*.sh).
//
//   node check.mjs k8s RENDERED.yaml BIN_DIR      a `kubectl kustomize` output
//   node check.mjs compose COMPOSE.yaml BIN_DIR   deploy/compose.yaml
//   node check.mjs dashboard DASHBOARD.json       a Grafana dashboard
//
// k8s: every object validates against its Kubernetes, KEDA or Prometheus Operator schema (a kind
// without one fails, except Strimzi's, checked by the rules below); LeadFlow's pods are
// restricted, have probes, resources and a grace period longer than their shutdown; the KEDA
// maximum equals the inbound topic's partitions; every alert has a runbook entry; alerts and the
// dashboard query only metrics that the services register or the named exporters publish.
// Both: every variable given to a LeadFlow binary is one its `--help` lists, and the binary
// itself accepts the whole environment (`--check-config`): a typo or a missing required variable
// fails here as it would fail the pod.
// Exit status 0 when everything holds, 1 with one line per problem otherwise.

import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments, parse } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const problems = [];
const fail = (where, what) => problems.push(`${where}: ${what}`);

// Binaries of the image, by the name a container's args start with.
const kBinaries = ["crm-core", "webform-ingest", "crmctl"];
// Where each binary is in the build tree.
const binaryPath = (binDir, name) => join(binDir, "services", name, name);

// --- schemas --------------------------------------------------------------------------------

// apiVersion/kind -> module of its model class.
function modelModule(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "keda.sh") {
    return `@kubernetes-models/keda/keda.sh/${version}/${kind}`;
  }
  if (group === "monitoring.coreos.com") {
    return `@kubernetes-models/prometheus-operator/monitoring.coreos.com/${version}/${kind}`;
  }
  return group === "" ? `kubernetes-models/${version}/${kind}` : `kubernetes-models/${group}/${version}/${kind}`;
}

async function validateSchema(doc, where) {
  if (doc.apiVersion?.startsWith("kafka.strimzi.io/")) {
    return validateStrimzi(doc, where);
  }
  let model;
  try {
    model = await import(modelModule(doc.apiVersion, doc.kind));
  } catch {
    fail(where, `no schema for ${doc.apiVersion} ${doc.kind}`);
    return;
  }
  try {
    new model[doc.kind](doc).validate();
  } catch (error) {
    fail(where, `schema: ${String(error.message).split("\n").slice(0, 6).join("; ")}`);
  }
}

// No Strimzi models run on the Node.js of Debian 12: the fields LeadFlow relies on, checked here.
function validateStrimzi(doc, where) {
  if (doc.kind === "KafkaTopic") {
    const spec = doc.spec ?? {};
    if (!doc.metadata?.labels?.["strimzi.io/cluster"]) {
      fail(where, "KafkaTopic without the strimzi.io/cluster label");
    }
    if (!Number.isInteger(spec.partitions) || spec.partitions < 1) {
      fail(where, "spec.partitions must be a positive integer");
    }
    if (!Number.isInteger(spec.replicas) || spec.replicas < 3) {
      fail(where, "spec.replicas must be at least 3 (min.insync.replicas=2 needs a spare)");
    }
    if (String(spec.config?.["min.insync.replicas"]) !== "2") {
      fail(where, "config min.insync.replicas must be 2");
    }
    const allowed = new Set(["topicName", "partitions", "replicas", "config"]);
    for (const key of Object.keys(spec)) {
      if (!allowed.has(key)) {
        fail(where, `unknown KafkaTopic field spec.${key}`);
      }
    }
  } else if (doc.kind === "Kafka") {
    if (!Array.isArray(doc.spec?.kafka?.listeners) || doc.spec.kafka.listeners.length === 0) {
      fail(where, "Kafka without listeners");
    }
  } else if (doc.kind !== "KafkaNodePool") {
    fail(where, `no check for ${doc.kind}`);
  }
}

// --- LeadFlow's pods ------------------------------------------------------------------------

const isLeadflowImage = (image) => /(^|\/)leadflow(:|$)/.test(image ?? "");

function podSpecOf(doc) {
  if (doc.kind === "Deployment" || doc.kind === "Job") {
    return doc.spec?.template?.spec;
  }
  return undefined;
}

// Reads a duration variable's value in milliseconds from an environment or the --help default.
function millis(env, help, name) {
  if (env[name] !== undefined) {
    return Number(env[name]);
  }
  return Number(help.defaults.get(name));
}

// How long each binary may take to stop after SIGTERM, from its own settings.
function shutdownGraceSeconds(binary, env, help) {
  if (binary === "webform-ingest") {
    return (
      (millis(env, help, "WEBFORM_SHUTDOWN_DELAY_MS") +
        millis(env, help, "WEBFORM_SHUTDOWN_GRACE_MS")) /
      1000
    );
  }
  // crm-core: 5 s for gRPC calls in flight, then the batch in flight (bounded by its wait).
  return 5 + millis(env, help, "CRM_BATCH_MAX_WAIT_MS") / 1000;
}

function checkPod(doc, where, environments) {
  const pod = podSpecOf(doc);
  if (!pod) {
    return;
  }
  const containers = [...(pod.initContainers ?? []), ...(pod.containers ?? [])];
  if (!containers.some((c) => isLeadflowImage(c.image))) {
    return;
  }
  if (pod.securityContext?.runAsNonRoot !== true) {
    fail(where, "pod securityContext.runAsNonRoot must be true");
  }
  if (pod.securityContext?.seccompProfile?.type !== "RuntimeDefault") {
    fail(where, "pod seccompProfile must be RuntimeDefault");
  }
  if (pod.automountServiceAccountToken !== false) {
    fail(where, "automountServiceAccountToken must be false");
  }
  for (const container of containers) {
    const at = `${where} container ${container.name}`;
    const sc = container.securityContext ?? {};
    if (sc.readOnlyRootFilesystem !== true || sc.allowPrivilegeEscalation !== false) {
      fail(at, "needs readOnlyRootFilesystem: true and allowPrivilegeEscalation: false");
    }
    if (JSON.stringify(sc.capabilities?.drop) !== JSON.stringify(["ALL"])) {
      fail(at, "must drop ALL capabilities");
    }
    if (!container.resources?.requests?.memory || !container.resources?.limits?.memory) {
      fail(at, "needs a memory request and limit");
    }
  }
  if (doc.kind !== "Deployment") {
    return;
  }
  for (const container of pod.containers ?? []) {
    const at = `${where} container ${container.name}`;
    if (!container.readinessProbe || !container.livenessProbe) {
      fail(at, "needs readiness and liveness probes");
    }
    const env = environments.get(container);
    const binary = container.args?.[0];
    if (!env || !kBinaries.includes(binary)) {
      continue;
    }
    const preStop = container.lifecycle?.preStop?.sleep?.seconds ?? 0;
    const grace = shutdownGraceSeconds(binary, env.values, env.help);
    const period = pod.terminationGracePeriodSeconds ?? 30;
    if (!(period > preStop + grace)) {
      fail(at, `terminationGracePeriodSeconds ${period} must exceed preStop ${preStop} s + shutdown ${grace} s`);
    }
  }
}

// --- environment variables -------------------------------------------------------------------

const helpCache = new Map();
// The variables a binary accepts and their defaults, from its own --help.
function helpOf(binDir, binary) {
  if (!helpCache.has(binary)) {
    const text = execFileSync(binaryPath(binDir, binary), ["--help"], { env: {}, encoding: "utf8" });
    const defaults = new Map();
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; ++i) {
      const name = lines[i].match(/^  ([A-Z][A-Z0-9_]*)$/)?.[1];
      if (name) {
        defaults.set(name, lines[i + 1]?.match(/\(default: '(.*)'\)$/)?.[1]);
      }
    }
    if (defaults.size === 0) {
      throw new Error(`${binary} --help lists no variable`);
    }
    helpCache.set(binary, { names: new Set(defaults.keys()), defaults });
  }
  return helpCache.get(binary);
}

// Example values for Secrets that the operator creates (not in the rendered manifests).
const secretExamples = JSON.parse(readFileSync(join(here, "secret-examples.json"), "utf8"));

function secretValue(secrets, name, key, where) {
  const data = secrets.get(name);
  if (data && key in data) {
    return data[key];
  }
  const example = secretExamples[name]?.[key];
  if (example === undefined) {
    fail(where, `Secret ${name} key ${key} is neither rendered nor in secret-examples.json`);
    return "";
  }
  return example;
}

// The environment a container gets, resolved from the rendered ConfigMaps and Secrets.
function resolveEnv(container, configMaps, secrets, where) {
  const values = {};
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef) {
      const data = configMaps.get(source.configMapRef.name);
      if (!data) {
        fail(where, `envFrom ConfigMap ${source.configMapRef.name} is not rendered`);
      }
      Object.assign(values, data ?? {});
    } else if (source.secretRef) {
      const data = secrets.get(source.secretRef.name) ?? secretExamples[source.secretRef.name];
      if (!data) {
        fail(where, `envFrom Secret ${source.secretRef.name} is neither rendered nor an example`);
      }
      Object.assign(values, data ?? {});
    }
  }
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) {
      values[variable.name] = String(variable.value);
    } else if (variable.valueFrom?.configMapKeyRef) {
      const ref = variable.valueFrom.configMapKeyRef;
      const value = configMaps.get(ref.name)?.[ref.key];
      if (value === undefined) {
        fail(where, `${variable.name}: ConfigMap ${ref.name} has no key ${ref.key}`);
      }
      values[variable.name] = value ?? "";
    } else if (variable.valueFrom?.secretKeyRef) {
      const ref = variable.valueFrom.secretKeyRef;
      values[variable.name] = secretValue(secrets, ref.name, ref.key, `${where} ${variable.name}`);
    } else {
      fail(where, `${variable.name}: no value`);
    }
  }
  return values;
}

// The binary's --help must list every variable, and the binary must accept the environment.
function checkEnvironment(binDir, args, values, where) {
  const binary = args?.[0];
  if (!kBinaries.includes(binary)) {
    fail(where, `runs '${binary}', not one of the image's binaries (${kBinaries.join(", ")})`);
    return undefined;
  }
  let help;
  try {
    help = helpOf(binDir, binary);
  } catch (error) {
    fail(where, `cannot read ${binary} --help: ${error.message.split("\n")[0]}`);
    return undefined;
  }
  for (const name of Object.keys(values)) {
    if (!help.names.has(name)) {
      fail(where, `${name} is not a variable of ${binary} (see ${binary} --help)`);
    }
  }
  const run = spawnSync(binaryPath(binDir, binary), [...args.slice(1), "--check-config"], {
    env: values,
    encoding: "utf8",
    timeout: 20000,
  });
  if (run.status !== 0) {
    const said = `${run.stderr ?? ""}${run.stdout ?? ""}`.trim().replace(/\n/g, "; ");
    fail(where, `${binary} refuses this environment (exit ${run.status}): ${said}`);
  }
  return help;
}

// The ports a binary listens on with this environment: its *_PORT variables and the port of its
// *_ADDRESS host:port variables, as set or by default (not the ports of the servers it calls).
function listeningPorts(values, help) {
  const ports = new Set();
  for (const name of help.names) {
    if (/REDIS|KAFKA|DATABASE/.test(name)) {
      continue;
    }
    const value = values[name] ?? help.defaults.get(name) ?? "";
    if (name.endsWith("_PORT") && /^\d+$/.test(value)) {
      ports.add(Number(value));
    } else if (name.endsWith("_ADDRESS") && /:(\d+)$/.test(value)) {
      ports.add(Number(value.match(/:(\d+)$/)[1]));
    }
  }
  return ports;
}

function checkPorts(declared, values, help, where) {
  if (!help) {
    return;
  }
  const listening = listeningPorts(values, help);
  for (const port of declared) {
    if (!listening.has(Number(port))) {
      fail(where, `port ${port} is not one the binary listens on with this environment (${[...listening].join(", ")})`);
    }
  }
}

// --- k8s ------------------------------------------------------------------------------------

async function checkK8s(file, binDir) {
  const docs = parseAllDocuments(readFileSync(file, "utf8")).map((d) => d.toJS());
  if (docs.length === 0) {
    fail(file, "no objects");
  }
  const configMaps = new Map();
  const secrets = new Map();
  for (const doc of docs) {
    if (doc.kind === "ConfigMap") {
      configMaps.set(doc.metadata.name, doc.data ?? {});
    } else if (doc.kind === "Secret") {
      const data = { ...(doc.stringData ?? {}) };
      for (const [key, value] of Object.entries(doc.data ?? {})) {
        data[key] = Buffer.from(value, "base64").toString("utf8");
      }
      secrets.set(doc.metadata.name, data);
    }
  }
  // kustomize folds long base64 values over lines; the API server's decoder skips newlines, the
  // schema's "byte" format does not.
  for (const doc of docs.filter((d) => d.kind === "Secret" && d.data)) {
    for (const key of Object.keys(doc.data)) {
      doc.data[key] = String(doc.data[key]).replace(/\s+/g, "");
    }
  }
  const environments = new Map();
  let leadflowContainers = 0;
  for (const doc of docs) {
    const where = `${doc.kind}/${doc.metadata?.name}`;
    await validateSchema(doc, where);
    const pod = podSpecOf(doc);
    for (const container of [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])]) {
      if (!isLeadflowImage(container.image)) {
        continue;
      }
      ++leadflowContainers;
      const at = `${where} container ${container.name}`;
      const values = resolveEnv(container, configMaps, secrets, at);
      const help = checkEnvironment(binDir, container.args, values, at);
      checkPorts((container.ports ?? []).map((p) => p.containerPort), values, help, at);
      environments.set(container, { values, help });
    }
    checkPod(doc, where, environments);
  }
  if (leadflowContainers === 0) {
    fail(file, "no LeadFlow container rendered");
  }
  // KEDA adds consumers up to the partition count; more would sit idle.
  const inbound = docs.find((d) => d.kind === "KafkaTopic" && d.spec?.topicName === "leadflow.inbound.v1");
  for (const scaled of docs.filter((d) => d.kind === "ScaledObject")) {
    const trigger = scaled.spec?.triggers?.find((t) => t.type === "kafka");
    if (!trigger || trigger.metadata?.topic !== "leadflow.inbound.v1") {
      fail(`ScaledObject/${scaled.metadata.name}`, "needs a kafka trigger on leadflow.inbound.v1");
    }
    if (inbound && scaled.spec.maxReplicaCount !== inbound.spec.partitions) {
      fail(`ScaledObject/${scaled.metadata.name}`,
           `maxReplicaCount ${scaled.spec.maxReplicaCount} != ${inbound.spec.partitions} partitions`);
    }
  }
  // Every alert has a runbook entry: a heading of its name in docs/operations.md.
  const operations = readFileSync(join(root, "docs", "operations.md"), "utf8");
  for (const rule of docs.filter((d) => d.kind === "PrometheusRule")) {
    for (const group of rule.spec?.groups ?? []) {
      for (const alert of (group.rules ?? []).filter((r) => r.alert)) {
        const heading = new RegExp(`^#+ .*\\b${alert.alert}\\b`, "m");
        if (!heading.test(operations)) {
          fail(`PrometheusRule alert ${alert.alert}`, "no runbook heading in docs/operations.md");
        }
        checkExpression(alert.expr, `PrometheusRule alert ${alert.alert}`);
        const anchor = alert.alert.toLowerCase();
        if (!alert.annotations?.runbook_url?.endsWith(`#${anchor}`)) {
          fail(`PrometheusRule alert ${alert.alert}`, `runbook_url must end with #${anchor}`);
        }
      }
    }
  }
}

// --- metric names ---------------------------------------------------------------------------

// Metrics the dashboards and alerts may use: those the services register (read from the source,
// so a renamed metric fails here), and those of the exporters named in docs/operations.md.
const kExporterMetrics = [
  "kafka_consumergroup_lag",
  "kafka_topic_partition_current_offset",
  "kafka_topic_partition_oldest_offset",
  "kube_deployment_status_replicas_available",
  "kube_deployment_spec_replicas",
];
let knownMetricsCache;
function knownMetrics() {
  if (knownMetricsCache) {
    return knownMetricsCache;
  }
  const names = new Set(kExporterMetrics);
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        walk(path);
      } else if (entry.name.endsWith(".cc") && !entry.name.endsWith("_test.cc")) {
        const text = readFileSync(path, "utf8");
        for (const match of text.matchAll(/Add(Counter|Gauge|Histogram|CallbackGauge)\(\s*"([a-z_:][a-z0-9_:]*)"/g)) {
          names.add(match[2]);
          if (match[1] === "Histogram") {
            for (const suffix of ["_bucket", "_sum", "_count"]) {
              names.add(match[2] + suffix);
            }
          }
        }
      }
    }
  };
  walk(join(root, "services"));
  walk(join(root, "libs"));
  knownMetricsCache = names;
  return names;
}

function checkExpression(expr, where) {
  const known = knownMetrics();
  for (const match of String(expr).matchAll(/\b((?:crm|webform|http|kafka|kube)_[a-z0-9_:]*)/g)) {
    if (!known.has(match[1])) {
      fail(where, `unknown metric ${match[1]}`);
    }
  }
}

function checkDashboard(file) {
  const dashboard = JSON.parse(readFileSync(file, "utf8"));
  let targets = 0;
  for (const panel of dashboard.panels ?? []) {
    for (const target of panel.targets ?? []) {
      ++targets;
      checkExpression(target.expr, `panel "${panel.title}"`);
    }
  }
  if (targets === 0) {
    fail(file, "no panel queries anything");
  }
}

// --- compose --------------------------------------------------------------------------------

function checkCompose(file, binDir) {
  // Compose files share settings through YAML merge keys (<<: *anchor).
  const compose = parse(readFileSync(file, "utf8"), { merge: true });
  const services = compose?.services ?? {};
  const required = ["kafka", "postgres", "redis", "crm-core-migrate", "crm-core", "webform-ingest"];
  for (const name of required) {
    if (!services[name]) {
      fail(file, `no service ${name}`);
    }
  }
  const hostPorts = new Map();
  for (const [name, service] of Object.entries(services)) {
    const where = `compose service ${name}`;
    for (const port of service.ports ?? []) {
      const host = String(port).split(":").slice(-2, -1)[0];
      if (host && hostPorts.has(host)) {
        fail(where, `host port ${host} also published by ${hostPorts.get(host)}`);
      }
      hostPorts.set(host, name);
    }
    for (const dependency of Object.keys(service.depends_on ?? {})) {
      if (!services[dependency]) {
        fail(where, `depends on unknown service ${dependency}`);
      }
    }
    if (!isLeadflowImage(service.image) && !service.build) {
      continue;
    }
    const command = Array.isArray(service.command) ? service.command : String(service.command ?? "").split(/\s+/);
    const environment = Array.isArray(service.environment)
      ? Object.fromEntries(service.environment.map((e) => [e.split("=")[0], e.split("=").slice(1).join("=")]))
      : Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, String(v ?? "")]));
    const help = checkEnvironment(binDir, command, environment, where);
    const published = (service.ports ?? []).map((p) => String(p).split(":").pop().split("/")[0]);
    checkPorts(published, environment, help, where);
  }
  // The migrations run first: crm-core waits for them to complete.
  const waits = services["crm-core"]?.depends_on?.["crm-core-migrate"]?.condition;
  if (waits !== "service_completed_successfully") {
    fail("compose service crm-core", "must depend on crm-core-migrate completing successfully");
  }
}

// --- main -----------------------------------------------------------------------------------

const [mode, file, buildDir] = process.argv.slice(2);
const binDir = buildDir ? resolve(buildDir) : buildDir;
if (!["k8s", "compose", "dashboard"].includes(mode) || !file || (mode !== "dashboard" && !binDir)) {
  console.error("usage: node check.mjs k8s|compose FILE BUILD_DIR | dashboard FILE");
  process.exit(2);
}
if (mode === "k8s") {
  await checkK8s(file, binDir);
} else if (mode === "compose") {
  checkCompose(file, binDir);
} else {
  checkDashboard(file);
}
if (problems.length > 0) {
  console.error(problems.map((p) => `FAIL ${p}`).join("\n"));
  console.error(`${problems.length} problem(s) in ${file}`);
  process.exit(1);
}
console.log(`OK ${file}`);
