// The Go stand-in re-implements AJV's verdicts (JSON Schema 2020-12 plus
// AJV's nullable, coerceTypes and rest-typings' keyword and formats). This
// test holds it to AJV itself: every case of
// internal/testenv/rocketchat/testdata/ajv-cases.json is judged here by
// rest-typings' own compiled validators, and by the Go validator in
// TestTheGoValidatorAgreesWithRestTypingsAJV (run by the Go test
// TestRestTypingsAJVAgreesWithTheCases).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { build } from 'esbuild';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const testdata = join(here, '..', '..', 'internal', 'testenv', 'rocketchat', 'testdata');

test("rest-typings' AJV validators judge the cases as the cases say", async () => {
	const bundle = join(here, 'build', 'rest-typings-test.mjs');
	mkdirSync(dirname(bundle), { recursive: true });
	await build({
		stdin: { contents: "export * from '@rocket.chat/rest-typings';", resolveDir: here, loader: 'js' },
		bundle: true, format: 'esm', platform: 'node', outfile: bundle, logLevel: 'warning',
	});
	const rt = await import(pathToFileURL(bundle).href);
	const fixture = JSON.parse(readFileSync(join(testdata, 'validators.json'), 'utf8'));
	const cases = JSON.parse(readFileSync(join(testdata, 'ajv-cases.json'), 'utf8'));
	const failures = [];
	for (const c of cases) {
		const route = fixture.routes[c.route];
		assert.ok(route, `${c.route} is not in the fixture`);
		const validate = rt[route.validator];
		// The fixture is what the package holds.
		assert.deepEqual(validate.schema, route.schema, `${route.validator}'s schema differs from the fixture`);
		const params = structuredClone(c.params);
		const valid = validate(params);
		if (valid !== c.valid) {
			failures.push(`${c.route} ${JSON.stringify(c.params)}: AJV says ${valid ? 'valid' : 'invalid'} ${JSON.stringify(validate.errors)}`);
		} else if (c.coerced && JSON.stringify(params) !== JSON.stringify(c.coerced)) {
			failures.push(`${c.route} ${JSON.stringify(c.params)}: AJV coerced it to ${JSON.stringify(params)}`);
		}
	}
	assert.deepEqual(failures, []);
});
