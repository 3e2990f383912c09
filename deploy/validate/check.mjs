// Offline checks of LeadFlow's deployment files, run by the deploy tests (deploy/validate/*.sh).
//
//   node check.mjs k8s RENDERED.yaml BIN_DIR [OVERLAY]   a `kubectl kustomize` output
//   node check.mjs compose COMPOSE.yaml BIN_DIR   deploy/compose.yaml
//   node check.mjs dashboard DASHBOARD.json       a Grafana dashboard
//
// k8s: every object validates against its Kubernetes, KEDA or Prometheus Operator schema (a kind
// without one fails, except Strimzi's, checked by the rules below); LeadFlow's pods are
// restricted, have probes, resources and a grace period longer than their shutdown; the KEDA
// maximum equals the inbound topic's partitions; every alert has a runbook entry; alerts and the
// dashboard query only metrics that the services register or the named exporters publish.
// Pods get the variables Kubernetes injects for every Service of the namespace unless
// enableServiceLinks is false; every egress rule names its destinations; the Kafka, Redis and
// PostgreSQL addresses name a rendered Service and one of its ports (or an external endpoint of an
// operator's Secret); Kafka Exporter is scraped when alerts read its metrics; a Job is never
// rendered with the Deployments it must precede. OVERLAY "prod": TLS on the gRPC API, a forms
// file, a verified database certificate, narrow trusted proxies.
// Both: every variable given to a LeadFlow binary is one its `--help` lists, and the binary
// itself accepts the whole environment (`--check-config`), files mounted from rendered ConfigMaps
// included: a typo or a missing required variable fails here as it would fail the pod. compose:
// host ports on loopback only, Kafka's log directory on its volume.
// Exit status 0 when everything holds, 1 with one line per problem otherwise.

import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments, parse } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const problems = [];
const fail = (where, what) => problems.push(`${where}: ${what}`);

// Binaries of the image, by the name a container's args start with.
const kBinaries = ["crm-core", "webform-ingest", "telephony-ingest", "email-ingest", "crmctl"];
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
  if (binary === "telephony-ingest") {
    return (
      (millis(env, help, "TELEPHONY_SHUTDOWN_DELAY_MS") +
        millis(env, help, "TELEPHONY_SHUTDOWN_GRACE_MS")) /
      1000
    );
  }
  if (binary === "email-ingest") {
    // Webhooks in flight, then an SMTP transaction in flight: each bounded by the grace.
    return (2 * millis(env, help, "EMAIL_SHUTDOWN_GRACE_MS")) / 1000;
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
    // An overlay names the release; `latest` (or no tag) means its images transform missed.
    const tag = isLeadflowImage(container.image) ? container.image.match(/:([^/:]+)$/)?.[1] : "-";
    if (!tag || tag === "latest") {
      fail(at, `image ${container.image}: no release tag (is the overlay's images: applied?)`);
    }
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

// Returns [value, true when it is an example of a Secret the operator creates].
function secretValue(secrets, name, key, where) {
  const data = secrets.get(name);
  if (data && key in data) {
    return [data[key], false];
  }
  const example = secretExamples[name]?.[key];
  if (example === undefined) {
    fail(where, `Secret ${name} key ${key} is neither rendered nor in secret-examples.json`);
    return ["", false];
  }
  return [example, true];
}

// The environment a container gets, resolved from the rendered ConfigMaps and Secrets.
// `operatorValues` collects the names whose value comes from an operator's Secret (an example).
function resolveEnv(container, configMaps, secrets, where, operatorValues = new Set()) {
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
      if (!secrets.has(source.secretRef.name)) {
        Object.keys(data ?? {}).forEach((name) => operatorValues.add(name));
      }
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
      // An optional key a rendered Secret lacks leaves the variable unset, as Kubernetes does
      // (the dev overlay's generated Secret need not hold every optional key).
      if (ref.optional === true && secrets.has(ref.name) && !(ref.key in secrets.get(ref.name))) {
        continue;
      }
      const [value, example] = secretValue(secrets, ref.name, ref.key, `${where} ${variable.name}`);
      values[variable.name] = value;
      if (example) {
        operatorValues.add(variable.name);
      }
    } else {
      fail(where, `${variable.name}: no value`);
    }
  }
  return values;
}

// The binary's --help must list every variable, and the binary must accept the environment:
// `values` (the manifest's own) plus `injected` (what the platform adds, e.g. service links), with
// the files `files` (mount path -> {file name: content}) present where the paths point.
function checkEnvironment(binDir, args, values, where, injected = {}, files = new Map()) {
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
  // Mounted ConfigMap files are written under a scratch directory and the paths rewritten to it,
  // so that the binary reads (and validates) the very content the pod would.
  const scratch = mkdtempSync(join(tmpdir(), "leadflow-check-"));
  const env = { ...injected, ...values };
  for (const [mountPath, content] of files) {
    const dir = join(scratch, mountPath);
    mkdirSync(dir, { recursive: true });
    for (const [name, text] of Object.entries(content)) {
      writeFileSync(join(dir, name), text);
    }
    for (const [name, value] of Object.entries(env)) {
      if (value.startsWith(`${mountPath}/`)) {
        env[name] = join(scratch, value);
      }
    }
  }
  const run = spawnSync(binaryPath(binDir, binary), [...args.slice(1), "--check-config"], {
    env,
    encoding: "utf8",
    timeout: 20000,
  });
  rmSync(scratch, { recursive: true, force: true });
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

// --- k8s: what the cluster adds, where things are --------------------------------------------

// The variables kubelet injects into every container of a pod whose enableServiceLinks is not
// false, one set per Service of the pod's namespace that has a cluster IP (not ExternalName, not
// headless): NAME_SERVICE_HOST, NAME_SERVICE_PORT[_PORTNAME], NAME_PORT[_P_PROTO[_PROTO|_PORT|_ADDR]].
function serviceLinks(services, namespace) {
  const env = {};
  const ip = "10.96.0.10";
  for (const service of services) {
    if ((service.metadata.namespace ?? "") !== (namespace ?? "") || service.spec?.type === "ExternalName" ||
        service.spec?.clusterIP === "None") {
      continue;
    }
    const prefix = service.metadata.name.toUpperCase().replace(/-/g, "_");
    const ports = service.spec?.ports ?? [];
    if (ports.length === 0) {
      continue;
    }
    env[`${prefix}_SERVICE_HOST`] = ip;
    env[`${prefix}_SERVICE_PORT`] = String(ports[0].port);
    env[`${prefix}_PORT`] = `tcp://${ip}:${ports[0].port}`;
    for (const port of ports) {
      const protocol = port.protocol ?? "TCP";
      if (port.name) {
        env[`${prefix}_SERVICE_PORT_${port.name.toUpperCase().replace(/-/g, "_")}`] = String(port.port);
      }
      const base = `${prefix}_PORT_${port.port}_${protocol}`;
      env[base] = `${protocol.toLowerCase()}://${ip}:${port.port}`;
      env[`${base}_PROTO`] = protocol.toLowerCase();
      env[`${base}_PORT`] = String(port.port);
      env[`${base}_ADDR`] = ip;
    }
  }
  return env;
}

// Services by "namespace/name": the rendered ones, and the bootstrap Service Strimzi creates for
// each rendered Kafka cluster (<cluster>-kafka-bootstrap, the listeners' ports).
function serviceCatalog(docs) {
  const catalog = new Map();
  for (const doc of docs.filter((d) => d.kind === "Service")) {
    catalog.set(`${doc.metadata.namespace ?? ""}/${doc.metadata.name}`, {
      externalName: doc.spec?.type === "ExternalName",
      ports: new Set((doc.spec?.ports ?? []).map((p) => Number(p.port))),
    });
  }
  for (const doc of docs.filter((d) => d.kind === "Kafka")) {
    catalog.set(`${doc.metadata.namespace ?? ""}/${doc.metadata.name}-kafka-bootstrap`, {
      externalName: false,
      ports: new Set((doc.spec?.kafka?.listeners ?? []).map((l) => Number(l.port))),
    });
  }
  return catalog;
}

// The Service a host names from a pod of `namespace`: "name", "name.ns", "name.ns.svc" or
// "name.ns.svc.cluster.local". undefined for a name outside the cluster.
function clusterService(host, namespace) {
  const match = host.match(/^([a-z0-9-]+)(?:\.([a-z0-9-]+)(?:\.svc(?:\.cluster\.local)?)?)?$/);
  if (!match) {
    return undefined;
  }
  return { name: match[1], namespace: match[2] ?? namespace ?? "" };
}

function splitHostPort(address) {
  const match = String(address).trim().match(/^(.*):(\d+)$/);
  return match ? [match[1], Number(match[2])] : [String(address).trim(), undefined];
}

// The servers a LeadFlow binary calls with this environment: [variable, host, port] of Kafka's
// bootstrap servers, Redis (unless its port is 0: off) and the database URL's host.
function endpointsOf(values, help) {
  const value = (name) => values[name] ?? help?.defaults.get(name) ?? "";
  const endpoints = [];
  for (const name of Object.keys(values)) {
    if (name.endsWith("_KAFKA_BROKERS")) {
      for (const broker of values[name].split(",").filter((b) => b.trim())) {
        endpoints.push([name, ...splitHostPort(broker)]);
      }
    } else if (name.endsWith("_REDIS_HOST")) {
      const port = Number(value(name.replace(/_HOST$/, "_PORT")));
      if (port !== 0) {
        endpoints.push([name, values[name], port]);
      }
    } else if (name.endsWith("_DATABASE_URL")) {
      let url;
      try {
        url = new URL(values[name]);
      } catch {
        endpoints.push([name, undefined, undefined]);
        continue;
      }
      endpoints.push([name, url.hostname, Number(url.port || 5432)]);
    }
  }
  return endpoints;
}

// Each address names a Service of the catalog and one of its ports; a host outside the cluster
// only when the value comes from an operator's Secret (the managed database of docs/operations.md).
function checkEndpoints(values, help, namespace, catalog, operatorValues, where) {
  for (const [name, host, port] of endpointsOf(values, help)) {
    if (!host) {
      fail(where, `${name}: not a host:port or URL`);
      continue;
    }
    const ref = clusterService(host, namespace);
    const service = ref && catalog.get(`${ref.namespace}/${ref.name}`);
    if (service) {
      if (!service.ports.has(port)) {
        fail(where, `${name}: Service ${ref.name} has no port ${port} (${[...service.ports].join(", ")})`);
      }
    } else if (!(operatorValues.has(name) && host.includes(".") && !/\.svc(\.cluster\.local)?$/.test(host))) {
      fail(where, `${name}: ${host}:${port} is no rendered Service (nor an external endpoint of an operator's Secret)`);
    }
  }
}

// Files of the ConfigMaps a container mounts, by mount path (a Secret's files are not known).
function mountedConfigFiles(pod, container, configMaps) {
  const files = new Map();
  for (const mount of container.volumeMounts ?? []) {
    const volume = (pod.volumes ?? []).find((v) => v.name === mount.name);
    if (volume?.configMap) {
      const data = configMaps.get(volume.configMap.name) ?? {};
      const content = {};
      for (const [key, text] of Object.entries(data)) {
        const item = volume.configMap.items?.find((i) => i.key === key);
        if (!volume.configMap.items || item) {
          content[item?.path ?? key] = text;
        }
      }
      files.set(mount.mountPath.replace(/\/$/, ""), content);
    }
  }
  return files;
}

// True when `path` lies under one of the container's volume mounts of kind `kind` (secret,
// configMap, or any).
function mounted(pod, container, path, kind) {
  return (container.volumeMounts ?? []).some((mount) => {
    const volume = (pod.volumes ?? []).find((v) => v.name === mount.name);
    return path.startsWith(`${mount.mountPath.replace(/\/$/, "")}/`) && (!kind || volume?.[kind]);
  });
}

// Every egress rule names where it goes: a rule without `to` allows any destination.
function checkNetworkPolicy(doc, where) {
  (doc.spec?.egress ?? []).forEach((rule, index) => {
    const at = `${where} egress[${index}]`;
    if (!Array.isArray(rule.to) || rule.to.length === 0) {
      fail(at, "has no `to`: it allows any destination");
      return;
    }
    for (const peer of rule.to) {
      if (Object.keys(peer).length === 0 || ["0.0.0.0/0", "::/0"].includes(peer.ipBlock?.cidr)) {
        fail(at, "a `to` peer that matches everything");
      }
    }
  });
}

const selects = (selector, labels) =>
  Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
  (selector?.matchExpressions ?? []).every((e) =>
    e.operator === "In" ? e.values.includes(labels[e.key]) :
    e.operator === "Exists" ? e.key in labels : false);

// Alerts on Kafka Exporter's metrics fire only if it is scraped: a PodMonitor on the exporter's
// port, a NetworkPolicy letting Prometheus in, and an alert for when its series are missing.
function checkKafkaExporterScraped(docs) {
  const usesExporter = docs.filter((d) => d.kind === "PrometheusRule").flatMap((r) =>
    (r.spec?.groups ?? []).flatMap((g) => g.rules ?? [])).filter((r) => /\bkafka_/.test(r.expr ?? ""));
  if (usesExporter.length === 0) {
    return;
  }
  if (!usesExporter.some((r) => /absent\(\s*kafka_consumergroup_lag\b/.test(r.expr))) {
    fail("PrometheusRule", "no alert on absent(kafka_consumergroup_lag…): a missing exporter would silence the lag alerts");
  }
  const clusters = docs.filter((d) => d.kind === "Kafka" && d.spec?.kafkaExporter);
  if (clusters.length === 0) {
    fail("PrometheusRule", "alerts read kafka_* metrics but no rendered Kafka cluster runs Kafka Exporter");
  }
  for (const cluster of clusters) {
    const name = cluster.metadata.name;
    const namespace = cluster.metadata.namespace ?? "";
    const labels = { "strimzi.io/cluster": name, "strimzi.io/kind": "Kafka",
                     "strimzi.io/name": `${name}-kafka-exporter`, "strimzi.io/component-type": "kafka-exporter" };
    const scraped = docs.some((d) => d.kind === "PodMonitor" && (d.metadata.namespace ?? "") === namespace &&
      selects(d.spec?.selector, labels) &&
      (d.spec?.podMetricsEndpoints ?? []).some((e) => e.port === "tcp-prometheus"));
    if (!scraped) {
      fail(`Kafka/${name}`, `no PodMonitor scrapes ${name}-kafka-exporter on port tcp-prometheus`);
    }
    const allowed = docs.some((d) => d.kind === "NetworkPolicy" && (d.metadata.namespace ?? "") === namespace &&
      selects(d.spec?.podSelector, labels) &&
      (d.spec?.ingress ?? []).some((rule) => (rule.ports ?? []).some((p) => Number(p.port) === 9404)));
    if (!allowed) {
      fail(`Kafka/${name}`, `no NetworkPolicy lets Prometheus reach ${name}-kafka-exporter on 9404`);
    }
  }
}

// KEDA's operator connects from its own namespace: the bootstrap servers must be qualified with
// the ScaledObject's namespace and name a Service there.
function checkScaledObjectBrokers(scaled, catalog) {
  const where = `ScaledObject/${scaled.metadata.name}`;
  const namespace = scaled.metadata.namespace ?? "";
  for (const trigger of (scaled.spec?.triggers ?? []).filter((t) => t.type === "kafka")) {
    for (const broker of String(trigger.metadata?.bootstrapServers ?? "").split(",")) {
      const [host, port] = splitHostPort(broker);
      const ref = clusterService(host, undefined);
      if (!ref || !host.includes(".")) {
        fail(where, `bootstrapServers ${broker}: not namespace-qualified (KEDA resolves it from its own namespace)`);
        continue;
      }
      if (ref.namespace !== namespace) {
        fail(where, `bootstrapServers ${broker}: namespace ${ref.namespace}, not the ScaledObject's ${namespace}`);
      }
      if (!catalog.get(`${ref.namespace}/${ref.name}`)?.ports.has(port)) {
        fail(where, `bootstrapServers ${broker}: no such Service and port rendered`);
      }
    }
  }
}

// Production: no API key in clear, no form from anywhere, no database without a verified
// certificate, X-Forwarded-For believed only from the ingress controller.
function checkProduction(pod, container, values, where) {
  if (container.args?.[0] === "crm-core" && container.args?.[1] !== "migrate" &&
      /(^|,)api(,|$)/.test(values.CRM_ROLES ?? "api,consumer")) {
    for (const variable of ["CRM_TLS_CERT_FILE", "CRM_TLS_KEY_FILE"]) {
      if (!values[variable]) {
        fail(where, `prod: ${variable} must be set (gRPC over TLS)`);
      } else if (!mounted(pod, container, values[variable], "secret")) {
        fail(where, `prod: ${variable} ${values[variable]} is not in a mounted Secret`);
      }
    }
    if (values.CRM_GRPC_PLAINTEXT === "true") {
      fail(where, "prod: CRM_GRPC_PLAINTEXT=true");
    }
  }
  if (values.CRM_DATABASE_URL !== undefined) {
    let params;
    try {
      params = new URL(values.CRM_DATABASE_URL).searchParams;
    } catch {
      params = new URLSearchParams();
    }
    if (params.get("sslmode") !== "verify-full") {
      fail(where, "prod: CRM_DATABASE_URL needs sslmode=verify-full");
    }
    const root = params.get("sslrootcert") ?? "";
    if (!mounted(pod, container, root, "secret")) {
      fail(where, `prod: sslrootcert '${root}' is not in a mounted Secret`);
    }
  }
  if (container.args?.[0] === "webform-ingest") {
    if (!values.WEBFORM_FORMS_FILE) {
      fail(where, "prod: WEBFORM_FORMS_FILE must be set (without it any form from any origin is accepted)");
    } else if (!mounted(pod, container, values.WEBFORM_FORMS_FILE, "configMap")) {
      fail(where, `prod: WEBFORM_FORMS_FILE ${values.WEBFORM_FORMS_FILE} is not in a mounted ConfigMap`);
    }
    for (const range of String(values.WEBFORM_TRUSTED_PROXIES ?? "").split(",").filter((r) => r.trim())) {
      const bits = Number(range.split("/")[1] ?? (range.includes(":") ? 128 : 32));
      if (bits < (range.includes(":") ? 112 : 24)) {
        fail(where, `prod: WEBFORM_TRUSTED_PROXIES ${range.trim()} is wider than the ingress controller's pods`);
      }
    }
  }
}

// --- k8s ------------------------------------------------------------------------------------

async function checkK8s(file, binDir, overlay) {
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
  const services = docs.filter((d) => d.kind === "Service");
  const catalog = serviceCatalog(docs);
  let leadflowContainers = 0;
  for (const doc of docs) {
    const where = `${doc.kind}/${doc.metadata?.name}`;
    await validateSchema(doc, where);
    if (doc.kind === "NetworkPolicy") {
      checkNetworkPolicy(doc, where);
    }
    const pod = podSpecOf(doc);
    const namespace = doc.metadata?.namespace;
    // What kubelet adds to the environment: service links, unless the pod turns them off.
    const injected = pod?.enableServiceLinks === false ? {} : serviceLinks(services, namespace);
    for (const container of [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])]) {
      if (!isLeadflowImage(container.image)) {
        continue;
      }
      ++leadflowContainers;
      const at = `${where} container ${container.name}`;
      const operatorValues = new Set();
      const values = resolveEnv(container, configMaps, secrets, at, operatorValues);
      const files = mountedConfigFiles(pod, container, configMaps);
      const help = checkEnvironment(binDir, container.args, values, at, injected, files);
      checkPorts((container.ports ?? []).map((p) => p.containerPort), values, help, at);
      checkEndpoints(values, help, namespace, catalog, operatorValues, at);
      if (overlay === "prod") {
        checkProduction(pod, container, values, at);
      }
      environments.set(container, { values, help });
    }
    checkPod(doc, where, environments);
  }
  // A Job applied together with the Deployments runs beside them, not before: the migrations are
  // a kustomization of their own (docs/operations.md, "Upgrade").
  if (docs.some((d) => d.kind === "Job") && docs.some((d) => d.kind === "Deployment")) {
    fail(file, "a Job is rendered with Deployments: it would not run before them");
  }
  checkKafkaExporterScraped(docs);
  for (const scaled of docs.filter((d) => d.kind === "ScaledObject")) {
    checkScaledObjectBrokers(scaled, catalog);
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
  for (const match of String(expr).matchAll(/\b((?:crm|webform|email|telephony|smtp|lmtp|http|kafka|kube)_[a-z0-9_:]*)/g)) {
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

// The ports the compose services' servers listen on inside the network: PostgreSQL's and
// Redis's images their standard ports, Kafka its KAFKA_LISTENERS but the controller's.
function composeListeningPorts(services) {
  const ports = new Map();
  for (const [name, service] of Object.entries(services)) {
    const image = service.image ?? "";
    if (/^postgres(:|$)/.test(image)) {
      ports.set(name, new Set([5432]));
    } else if (/^redis(:|$)/.test(image)) {
      ports.set(name, new Set([6379]));
    } else if (/^apache\/kafka(:|$)/.test(image) && service.environment?.KAFKA_LISTENERS) {
      const controllers = String(service.environment.KAFKA_CONTROLLER_LISTENER_NAMES ?? "").split(",");
      ports.set(name, new Set(String(service.environment.KAFKA_LISTENERS).split(",")
        .map((l) => l.match(/^([A-Z_]+):\/\/[^:]*:(\d+)$/))
        .filter((m) => m && !controllers.includes(m[1])).map((m) => Number(m[2]))));
    }
  }
  return ports;
}

function checkCompose(file, binDir) {
  // Compose files share settings through YAML merge keys (<<: *anchor).
  const compose = parse(readFileSync(file, "utf8"), { merge: true });
  const services = compose?.services ?? {};
  const required = ["kafka", "postgres", "redis", "crm-core-migrate", "crm-core", "webform-ingest",
    "telephony-ingest", "email-ingest"];
  for (const name of required) {
    if (!services[name]) {
      fail(file, `no service ${name}`);
    }
  }
  const hostPorts = new Map();
  const listening = composeListeningPorts(services);
  for (const [name, service] of Object.entries(services)) {
    const where = `compose service ${name}`;
    for (const port of service.ports ?? []) {
      const parts = String(port).split(":");
      const host = parts.slice(-2, -1)[0];
      if (host && hostPorts.has(host)) {
        fail(where, `host port ${host} also published by ${hostPorts.get(host)}`);
      }
      hostPorts.set(host, name);
      // Published on every interface, a trial stack's databases and plaintext gRPC would be open
      // to the whole network.
      if (parts.length !== 3 || parts[0] !== "127.0.0.1") {
        fail(where, `port ${port} must be published on 127.0.0.1 only (127.0.0.1:HOST:CONTAINER)`);
      }
    }
    // The apache/kafka image keeps its log in /tmp/kraft-combined-logs unless told otherwise:
    // outside the volume, gone with the container.
    if (/^apache\/kafka(:|$)/.test(service.image ?? "") && service.entrypoint === undefined) {
      const logDirs = String(service.environment?.KAFKA_LOG_DIRS ?? "");
      const targets = (service.volumes ?? []).map((v) => String(v).split(":")[1]).filter(Boolean);
      if (!logDirs || !logDirs.split(",").every((dir) => targets.some((t) => dir === t || dir.startsWith(`${t}/`)))) {
        fail(where, `KAFKA_LOG_DIRS '${logDirs}' is not on a mounted volume (${targets.join(", ")})`);
      }
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
    // Each address names a compose service and a port it listens on.
    for (const [variable, host, port] of endpointsOf(environment, help)) {
      if (!services[host]) {
        fail(where, `${variable}: ${host} is not a compose service`);
      } else if (!listening.get(host)?.has(port)) {
        fail(where, `${variable}: ${host} does not listen on ${port} (${[...(listening.get(host) ?? [])].join(", ")})`);
      }
    }
  }
  // The migrations run first: crm-core waits for them to complete.
  const waits = services["crm-core"]?.depends_on?.["crm-core-migrate"]?.condition;
  if (waits !== "service_completed_successfully") {
    fail("compose service crm-core", "must depend on crm-core-migrate completing successfully");
  }
}

// --- main -----------------------------------------------------------------------------------

const [mode, file, buildDir, overlay] = process.argv.slice(2);
const binDir = buildDir ? resolve(buildDir) : buildDir;
if (!["k8s", "compose", "dashboard"].includes(mode) || !file || (mode !== "dashboard" && !binDir)) {
  console.error("usage: node check.mjs k8s|compose FILE BUILD_DIR | dashboard FILE");
  process.exit(2);
}
if (mode === "k8s") {
  await checkK8s(file, binDir, overlay);
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
