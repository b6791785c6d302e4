// trim.mjs cuts GitHub's official OpenAPI description (from the npm package
// @octokit/openapi, pinned in package.json) down to the endpoints secbot
// calls, plus every component they reference, and writes the result to
// ghsa/ghsatest/testdata/github-openapi.json for the GitHub stand-in.
//
// Run: cd scripts/openapi && npm ci && node trim.mjs
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const pkgDir = dirname(require.resolve("@octokit/openapi/package.json"));
const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
const source = join(pkgDir, "generated", "api.github.com.json");
const out = join(here, "..", "..", "ghsa", "ghsatest", "testdata", "github-openapi.json");

// The endpoints secbot uses, and nothing else.
const keep = {
  "/repos/{owner}/{repo}/security-advisories": ["get", "post"],
  "/repos/{owner}/{repo}/security-advisories/{ghsa_id}": ["get", "patch"],
  "/repos/{owner}/{repo}/security-advisories/{ghsa_id}/forks": ["post"],
  "/repos/{owner}/{repo}/security-advisories/{ghsa_id}/cve": ["post"],
  "/repos/{owner}/{repo}": ["get"],
  "/users/{username}": ["get"],
  "/app/installations/{installation_id}/access_tokens": ["post"],
};

const full = JSON.parse(readFileSync(source, "utf8"));

const paths = {};
for (const [path, methods] of Object.entries(keep)) {
  const item = full.paths[path];
  if (!item) throw new Error(`${path} is not in ${source}`);
  const trimmed = {};
  for (const [key, value] of Object.entries(item)) {
    // Path-level parameters and the like stay; other methods go.
    const isMethod = ["get", "put", "post", "delete", "options", "head", "patch", "trace"].includes(key);
    if (isMethod && !methods.includes(key)) continue;
    trimmed[key] = value;
  }
  for (const m of methods) {
    if (!trimmed[m]) throw new Error(`${m.toUpperCase()} ${path} is not in ${source}`);
  }
  paths[path] = trimmed;
}

// Follow every "#/components/<kind>/<name>" reference, transitively.
const components = {};
const seen = new Set();
function walk(node) {
  if (Array.isArray(node)) {
    node.forEach(walk);
    return;
  }
  if (node === null || typeof node !== "object") return;
  for (const [key, value] of Object.entries(node)) {
    if (key === "$ref" && typeof value === "string") {
      const m = value.match(/^#\/components\/([^/]+)\/(.+)$/);
      if (!m) throw new Error(`unexpected $ref ${value}`);
      const [, kind, name] = m;
      if (seen.has(value)) continue;
      seen.add(value);
      const target = full.components?.[kind]?.[name];
      if (target === undefined) throw new Error(`dangling $ref ${value}`);
      (components[kind] ??= {})[name] = target;
      walk(target);
    } else {
      walk(value);
    }
  }
}
walk(paths);

// Sort component names so regenerating gives a stable diff.
const sortedComponents = {};
for (const kind of Object.keys(components).sort()) {
  sortedComponents[kind] = {};
  for (const name of Object.keys(components[kind]).sort()) {
    sortedComponents[kind][name] = components[kind][name];
  }
}

const trimmed = {
  openapi: full.openapi,
  info: {
    ...full.info,
    "x-secbot-source": `${pkg.name}@${pkg.version} generated/api.github.com.json, trimmed by scripts/openapi/trim.mjs`,
  },
  servers: full.servers,
  paths,
  components: sortedComponents,
};

mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(trimmed, null, 1) + "\n");
console.log(`wrote ${out}: ${Object.keys(paths).length} paths, ${seen.size} components`);
