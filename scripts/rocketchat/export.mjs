// export.mjs writes the request validators that Rocket.Chat's server
// registers on the routes secbot uses to a JSON fixture, so that the Go
// stand-in (internal/testenv/rocketchat) judges every request by Rocket.Chat's
// own rules instead of ours.
//
// Usage (from this folder): npm ci --legacy-peer-deps && node export.mjs
//
// @rocket.chat/rest-typings' dist/ is ESM with extensionless imports, which
// Node cannot load; esbuild bundles it into one file first.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', '..', 'internal', 'testenv', 'rocketchat', 'testdata', 'validators.json');

// Each route as the server registers it (apps/meteor/app/api/server/v1/*.ts):
// "validateParams" routes (API.v1.addRoute) check after authentication and
// the rate limiter, and answer a Meteor error "invalid-params"; "typed"
// routes (API.v1.get/post with body/query) are checked by the HTTP router
// before authentication. validator is the rest-typings export, or null when
// the server registers none for the route (listed in the README).
const routes = [
	['POST', 'chat.sendMessage', 'isChatSendMessageProps', 'validateParams'],
	['POST', 'chat.postMessage', 'isChatPostMessageProps', 'validateParams'],
	['GET', 'chat.getMessage', 'isChatGetMessageProps', 'validateParams'],
	['POST', 'chat.react', 'isChatReactProps', 'validateParams'],
	['POST', 'im.create', 'isDmCreateProps', 'typed'],
	['POST', 'dm.create', 'isDmCreateProps', 'typed'],
	['GET', 'im.history', 'isDmHistoryProps', 'typed'],
	['GET', 'dm.history', 'isDmHistoryProps', 'typed'],
	['GET', 'im.list', null, 'typed'],
	['GET', 'dm.list', null, 'typed'],
	['POST', 'groups.create', 'isGroupsCreateProps', 'validateParams'],
	['POST', 'groups.invite', 'isGroupsInviteProps', 'validateParams'],
	['POST', 'groups.kick', 'isGroupsKickProps', 'validateParams'],
	['POST', 'groups.leave', 'isGroupsLeaveProps', 'validateParams'],
	['GET', 'groups.history', 'isGroupsHistoryProps', 'validateParams'],
	['GET', 'groups.info', 'isGroupsInfoProps', 'validateParams'],
	['GET', 'groups.members', 'isGroupsMembersProps', 'validateParams'],
	['GET', 'groups.list', 'isGroupsListProps', 'validateParams'],
	['GET', 'channels.history', 'isChannelsHistoryProps', 'validateParams'],
	['GET', 'channels.list', 'isChannelsListProps', 'validateParams'],
	['GET', 'channels.info', null, 'validateParams'],
	['POST', 'channels.join', 'isChannelsJoinProps', 'validateParams'],
	['POST', 'channels.leave', 'isChannelsLeaveProps', 'validateParams'],
	['GET', 'rooms.info', 'isRoomsInfoProps', 'validateParams'],
	['GET', 'subscriptions.get', 'isSubscriptionsGetProps', 'validateParams'],
	['GET', 'users.info', 'isUsersInfoParamsGetProps', 'validateParams'],
	['GET', 'me', null, 'validateParams'],
];

const bundle = join(here, 'build', 'rest-typings.mjs');
mkdirSync(dirname(bundle), { recursive: true });
await build({
	stdin: {
		contents: "export * from '@rocket.chat/rest-typings';",
		resolveDir: here,
		loader: 'js',
	},
	bundle: true,
	format: 'esm',
	platform: 'node',
	outfile: bundle,
	logLevel: 'warning',
});
const rt = await import(pathToFileURL(bundle).href);
const pkg = JSON.parse(readFileSync(join(here, 'node_modules', '@rocket.chat', 'rest-typings', 'package.json'), 'utf8'));

// Which AJV instance compiled a validator decides how query strings are
// coerced: ajv has coerceTypes: true, ajvQuery coerceTypes: "array".
function instanceOf(validator) {
	if (rt.ajvQuery._cache.has(validator.schema)) return 'ajvQuery';
	if (rt.ajv._cache.has(validator.schema)) return 'ajv';
	throw new Error('validator compiled by neither ajv nor ajvQuery');
}

const fixture = {
	source: `${pkg.name}@${pkg.version}`,
	generatedBy: 'scripts/rocketchat/export.mjs',
	ajvOptions: {
		ajv: rt.ajv.opts.coerceTypes === true ? { coerceTypes: true } : { coerceTypes: rt.ajv.opts.coerceTypes },
		ajvQuery: { coerceTypes: rt.ajvQuery.opts.coerceTypes },
	},
	routes: {},
	withoutValidator: [],
};
for (const [method, route, name, registered] of routes) {
	const key = `${method} ${route}`;
	if (name === null) {
		fixture.withoutValidator.push(key);
		continue;
	}
	const validator = rt[name];
	if (typeof validator !== 'function' || !validator.schema) {
		throw new Error(`${name} is not an AJV validator in ${fixture.source}`);
	}
	fixture.routes[key] = {
		validator: name,
		ajv: instanceOf(validator),
		checks: method === 'GET' ? 'query' : 'body',
		registered,
		schema: validator.schema,
	};
}
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(fixture, null, '\t') + '\n');
console.log(`wrote ${Object.keys(fixture.routes).length} validators to ${out}`);
