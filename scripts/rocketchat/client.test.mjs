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

test('ddp-client logs in with a resume token, streams __my_messages__ and calls REST', { timeout: 30_000 }, async (t) => {
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

	const received = [];
	let arrived;
	const delivered = new Promise((resolve) => { arrived = resolve; });
	const sub = sdk.stream('room-messages', '__my_messages__', (message, details) => {
		received.push({ message, details });
		arrived();
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

	await delivered;
	const { message, details } = received[0];
	assert.equal(message._id, 'node-msg-1');
	assert.equal(message.rid, rid);
	assert.equal(message.msg, 'hello from ddp-client');
	assert.equal(message.u._id, alice.id);
	assert.deepEqual(details, { roomParticipant: true, roomType: 'd' });

	// History as the bot's REST client asks for it, newest first.
	const history = await sdk.rest.get('/v1/im.history', { roomId: rid, count: 10 });
	assert.equal(history.success, true);
	assert.deepEqual(history.messages.map((m) => m._id), ['node-msg-1']);

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
