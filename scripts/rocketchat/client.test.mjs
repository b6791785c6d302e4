// Rocket.Chat's own client libraries against the stand-in: if the stand-in
// spoke a protocol of its own, these would fail. Started by the Go test
// TestRocketChatsOwnClientSpeaksToTheStandIn (internal/testenv/rocketchat),
// which runs the stand-in and passes it in the environment:
//   RC_URL                    the server, e.g. http://127.0.0.1:1234
//   RC_BOT_ID, RC_BOT_TOKEN   the user the realtime client logs in as
//   RC_ALICE_ID, RC_ALICE_TOKEN  a user who writes to it
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { DDPSDK } from '@rocket.chat/ddp-client';
import { RestClient } from '@rocket.chat/api-client';

const env = (name) => {
	const v = process.env[name];
	assert.ok(v, `${name} is not set: run this through the Go test`);
	return v;
};

test('ddp-client logs in with a resume token, streams __my_messages__, reconnects after a drop and calls REST', { timeout: 30_000 }, async (t) => {
	assert.equal(typeof WebSocket, 'function', 'this node has no WebSocket (node 20 needs --experimental-websocket)');
	const url = env('RC_URL');
	const bot = { id: env('RC_BOT_ID'), token: env('RC_BOT_TOKEN') };
	const alice = { id: env('RC_ALICE_ID'), token: env('RC_ALICE_TOKEN') };

	const sdk = await DDPSDK.createAndConnect(url);
	t.after(() => {
		sdk.connection.close();
		// close() leaves the heartbeat timers running (they stop only on a
		// disconnect the client did not ask for): stop them so node exits.
		sdk.timeoutControl.stop();
	});
	assert.equal(sdk.connection.status, 'connected');

	const login = await sdk.account.loginWithToken(bot.token);
	assert.equal(login.id, bot.id);
	assert.equal(sdk.account.uid, bot.id);

	// The realtime client's own REST client, with the login's credentials.
	const me = await sdk.rest.get('/v1/me');
	assert.equal(me.success, true);
	assert.equal(me._id, bot.id);

	// Messages as the stream delivers them, one promise each.
	const waiting = [];
	const queued = [];
	const next = () => (queued.length ? Promise.resolve(queued.shift()) : new Promise((resolve) => waiting.push(resolve)));
	const sub = sdk.stream('room-messages', '__my_messages__', (message, details) => {
		const got = { message, details };
		if (waiting.length) waiting.shift()(got);
		else queued.push(got);
	});
	await sub.ready();

	const dm = await sdk.rest.post('/v1/im.create', { username: 'alice' });
	assert.equal(dm.success, true);
	const rid = dm.room._id;
	assert.equal(dm.room.t, 'd');

	// Alice writes with api-client's RestClient and her own token.
	const aliceRest = new RestClient({ baseUrl: url, credentials: { 'X-User-Id': alice.id, 'X-Auth-Token': alice.token } });
	const sent = await aliceRest.post('/v1/chat.sendMessage', { message: { _id: 'node-msg-1', rid, msg: 'hello from ddp-client' } });
	assert.equal(sent.success, true);
	assert.equal(sent.message._id, 'node-msg-1');

	const { message, details } = await next();
	assert.equal(message._id, 'node-msg-1');
	assert.equal(message.rid, rid);
	assert.equal(message.msg, 'hello from ddp-client');
	assert.equal(message.u._id, alice.id);
	assert.deepEqual(details, { roomParticipant: true, roomType: 'd' });

	// An outage: the stand-in drops the connection (a hook of the Go test);
	// ddp-client reconnects, logs in again and resubscribes by itself.
	const reconnected = new Promise((resolve) => sdk.connection.once('connected', resolve));
	assert.equal(await (await fetch(`${url}/_test/drop`)).text(), '1');
	await reconnected;
	const back = await fetch(`${url}/_test/wait-subscribed?userId=${bot.id}`);
	assert.equal(back.status, 200, await back.text());
	await aliceRest.post('/v1/chat.sendMessage', { message: { _id: 'node-msg-3', rid, msg: 'after the outage' } });
	const again = await next();
	assert.equal(again.message._id, 'node-msg-3');

	// History as the bot's REST client asks for it, newest first.
	const history = await sdk.rest.get('/v1/im.history', { roomId: rid, count: 10 });
	assert.equal(history.success, true);
	assert.deepEqual(history.messages.map((m) => m._id), ['node-msg-3', 'node-msg-1']);

	// A private group, and a repeated _id refused by the duplicate key.
	const group = await sdk.rest.post('/v1/groups.create', { name: 'node-client-group', members: ['alice'] });
	assert.equal(group.success, true);
	const once = await sdk.rest.post('/v1/chat.sendMessage', { message: { _id: 'node-msg-2', rid: group.group._id, msg: 'welcome' } });
	assert.equal(once.success, true);
	await assert.rejects(
		sdk.rest.post('/v1/chat.sendMessage', { message: { _id: 'node-msg-2', rid: group.group._id, msg: 'welcome' } }),
		(err) => {
			// api-client throws the Response of a failed call.
			assert.equal(err.status, 400);
			return true;
		},
	);

	sub.stop();
});
