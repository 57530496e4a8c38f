// The official Backendless JS SDK (npm `backendless` 8.0.0) against a live `tidings serve`.
//
// Run by tests/transports/test_sdk_realtime.py, which starts the server, passes it in
// TIDINGS_URL (the origin), TIDINGS_APP_ID and TIDINGS_API_KEY, and asserts on what this
// prints: one JSON object on the last line of stdout, {steps: {<name>: {error, ...facts}}}.
// Each step waits for events (a message, SUB_READY, a reconnect) with a timeout and records
// what happened; a step that times out records its error and the facts so far, and the next
// step still runs (each uses its own channel). Setup failures exit non-zero.
//
// The socket.io traffic is tapped with socket.io-client's onAny / onAnyOutgoing on each
// socket the SDK opens (before it connects), so the test sees what the server sent even
// where the SDK drops it (the SDK ignores SUB_RES for subscription ids it has stopped).

import { createRequire } from 'node:module'

import Backendless from 'backendless'

const require = createRequire(import.meta.url)
// The SDK's socket wrapper (the module instance the SDK itself loads).
const RTSocket = require('backendless-rt-client/lib/socket.js').default

const WAIT = Number(process.env.TIDINGS_WAIT_MS || 5000) // ms for any one thing to happen
const TOTAL = Number(process.env.TIDINGS_TOTAL_MS || 30000) // ms for the whole scenario
const PUBLISHER = 'sdk-e2e'

function env(name) {
  const value = process.env[name]
  if (!value) {
    process.stderr.write(`sdk_realtime.mjs: environment variable ${name} is not set\n`)
    process.exit(2)
  }
  return value
}

const SERVER = env('TIDINGS_URL')
const APP_ID = env('TIDINGS_APP_ID')
const API_KEY = env('TIDINGS_API_KEY')

const result = { sdk: require('backendless/package.json').version, steps: {} }

function finish(code) {
  process.exitCode = code
  process.stdout.write('\n' + JSON.stringify(result) + '\n') // synchronous on a pipe
}

const watchdog = setTimeout(() => {
  result.error = `the scenario did not finish within ${TOTAL} ms`
  finish(3)
  process.exit(3)
}, TOTAL)

// -- waiting for events ---------------------------------------------------------------------

const waiters = new Set()

function changed() {
  for (const check of [...waiters]) check()
}

/** Resolves when cond() holds, re-checked on every event the script sees; rejects after ms. */
function until(what, cond, ms = WAIT) {
  return new Promise((resolve, reject) => {
    if (cond()) return resolve()
    const check = () => {
      if (cond()) {
        clearTimeout(timer)
        waiters.delete(check)
        resolve()
      }
    }
    const timer = setTimeout(() => {
      waiters.delete(check)
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`))
    }, ms)
    waiters.add(check)
  })
}

/** For the absence of something that would have happened by `time` (epoch ms). */
function sleepUntil(time) {
  return new Promise(resolve => setTimeout(resolve, Math.max(0, time - Date.now())))
}

// -- the socket.io traffic --------------------------------------------------------------------

const wire = [] // {seq, socket, dir: 'in' | 'out', event, data, at}, in the order seen
const sockets = [] // {n, io (the socket.io-client Socket), clientId}
const connects = [] // epoch ms of each socket connect
const disconnects = [] // {at, reason}

function tap(rtSocket) {
  const io = rtSocket.ioSocket
  const n = sockets.length + 1
  sockets.push({ n, io, clientId: io.io.opts.query?.clientId ?? null })
  const record = dir => (event, data) => {
    wire.push({ seq: wire.length, socket: n, dir, event, data, at: Date.now() })
    queueMicrotask(changed) // after the SDK's own handlers have run
  }
  io.onAny(record('in'))
  io.onAnyOutgoing(record('out'))
}

function currentSocket() {
  return sockets.length
}

function received(event, id, socket) {
  return wire.filter(
    w =>
      w.dir === 'in' &&
      w.event === event &&
      w.data?.id === id &&
      (socket === undefined || w.socket === socket)
  )
}

function sent(event, id, socket) {
  return wire.filter(
    w =>
      w.dir === 'out' &&
      w.event === event &&
      w.data?.id === id &&
      (socket === undefined || w.socket === socket)
  )
}

// -- channels and listeners -----------------------------------------------------------------

async function join(name) {
  const channel = Backendless.Messaging.subscribe(name)
  const state = { calls: 0, errors: [] }
  channel.addConnectListener(
    () => {
      state.calls += 1
      changed()
    },
    error => {
      state.errors.push(error)
      changed()
    }
  )
  await until(
    `the connect listener of channel ${name}`,
    () => state.calls > 0 || state.errors.length > 0
  )
  if (state.errors.length) {
    throw new Error(`channel ${name} refused: ${JSON.stringify(state.errors)}`)
  }
  return { channel, state }
}

/** A message listener (with a selector if given): what it gets, its errors, its subscription id. */
function listen(channel, selector) {
  const listener = { selector: selector ?? null, got: [], errors: [] }
  listener.callback = message => {
    listener.got.push({ at: Date.now(), message })
    changed()
  }
  const onError = error => {
    listener.errors.push({ at: Date.now(), error })
    changed()
  }
  if (selector) channel.addMessageListener(selector, listener.callback, onError)
  else channel.addMessageListener(listener.callback, onError)
  // The SDK's own bookkeeping: the subscription whose onData is this callback.
  const subscriptions = Backendless.RT.subscriptions.subscriptions
  const ids = Object.keys(subscriptions).filter(
    id => subscriptions[id].onData === listener.callback
  )
  if (ids.length !== 1) {
    throw new Error(`expected one SDK subscription for the listener, found ${ids.length}`)
  }
  listener.id = ids[0]
  listener.texts = () => listener.got.map(g => g.message.message)
  listener.has = text => listener.texts().includes(text)
  return listener
}

function ready(listener, socket = currentSocket()) {
  return until(
    `SUB_READY for listener ${listener.id} (selector ${listener.selector}) on socket ${socket}`,
    () => received('SUB_READY', listener.id, socket).length > 0 || listener.errors.length > 0
  ).then(() => {
    if (listener.errors.length) {
      throw new Error(`listener ${listener.id} refused: ${JSON.stringify(listener.errors)}`)
    }
  })
}

function publish(channel, message, headers, delivery) {
  const options = new Backendless.PublishOptions({ publisherId: PUBLISHER, headers })
  return Backendless.Messaging.publish(
    channel,
    message,
    options,
    delivery ? new Backendless.DeliveryOptions(delivery) : undefined
  )
}

/** The messages the server delivered to subscription `id` after wire entry `after`. */
function deliveriesAfter(id, after) {
  return wire
    .filter(w => w.seq > after.seq && w.dir === 'in' && w.event === 'SUB_RES')
    .filter(w => w.data?.id === id && w.data.data !== undefined)
    .map(w => w.data.data.message)
}

function count(listener, text) {
  return listener.texts().filter(t => t === text).length
}

// -- the steps --------------------------------------------------------------------------------

async function step(name, body) {
  const facts = { error: null }
  result.steps[name] = facts
  const started = Date.now()
  try {
    await body(facts)
  } catch (error) {
    facts.error = error?.stack || String(error)
  }
  facts.ms = Date.now() - started
}

const channels = {}

async function subscribe(facts) {
  const started = Date.now()
  const { channel, state } = await join('news')
  channels.news = channel
  facts.connectListenerCalls = state.calls
  facts.connectErrors = state.errors
  facts.isJoined = channel.isJoined()
  facts.msToConnect = Date.now() - started
  facts.socketsOpened = sockets.length
  facts.subOnSent = wire
    .filter(w => w.dir === 'out' && w.event === 'SUB_ON')
    .map(w => ({ name: w.data.name, options: w.data.options }))
  const engine = sockets.at(-1).io.io.engine
  facts.transport = engine.transport.name
  if (facts.transport !== 'websocket') {
    engine.on('upgrade', changed)
    await until('the engine.io upgrade to websocket', () => engine.transport.name === 'websocket')
    facts.transport = engine.transport.name
  }
}

async function listeners(facts) {
  const news = channels.news
  const all = listen(news)
  const tokyo = listen(news, "city = 'Tokyo'")
  await Promise.all([ready(all), ready(tokyo)])
  const first = Date.now()
  facts.answers = [await publish('news', 'tokyo-1', { city: 'Tokyo', n: 1 })]
  facts.firstPublishWindow = [first, Date.now()]
  facts.answers.push(await publish('news', 'paris-1', { city: 'Paris' }))
  facts.answers.push(await publish('news', 'tokyo-2', { city: 'Tokyo' }))
  facts.answers.push(await publish('news', 'no-city', {}))
  facts.answers.push(await publish('news', 'end', { city: 'Tokyo' }))
  const done = () => all.has('end') && tokyo.has('end')
  try {
    await until("'end' at both listeners", done)
  } finally {
    facts.all = all.texts()
    facts.tokyo = tokyo.texts()
    facts.first = all.got[0]?.message ?? null
    facts.errors = [...all.errors, ...tokyo.errors].map(e => e.error)
  }
  news.removeAllMessageListeners()
}

async function timers(facts) {
  const channel = (await join('timers')).channel
  const listener = listen(channel)
  await ready(listener)
  const at = text => listener.got.filter(g => g.message.message === text).map(g => g.at)
  const ids = text =>
    listener.got.filter(g => g.message.message === text).map(g => g.message.messageId)
  const publishAt = Date.now() + 2000
  facts.delayed = { publishAt }
  facts.delayed.answer = await publish('timers', 'delayed', {}, { publishAt })
  facts.delayed.answeredAt = Date.now()
  const repeatFrom = Date.now()
  const repeatExpiresAt = repeatFrom + 2500 // due at +1 s and +2 s
  facts.repeating = { repeatFrom, repeatExpiresAt }
  const repeat = { repeatEvery: 1, repeatExpiresAt }
  facts.repeating.answer = await publish('timers', 'repeating', {}, repeat)
  facts.repeating.answeredAt = Date.now()
  try {
    await until('the delayed message', () => listener.has('delayed'), 2000 + WAIT)
    await until('the repeating message twice', () => count(listener, 'repeating') >= 2, 2000 + WAIT)
    // A repeat due after the expiry would come within a period of it: wait that long, then
    // a marker (delivered after anything already sent) closes the record. (Not 5 s after the
    // last request: Node's keep-alive agent and the server both drop idle connections then.)
    await sleepUntil(repeatExpiresAt + 1200)
    facts.endPublishedAt = Date.now()
    await publish('timers', 'end', {})
    await until("'end'", () => listener.has('end'))
  } finally {
    facts.delayed.arrivals = at('delayed')
    facts.delayed.messageIds = ids('delayed')
    facts.repeating.arrivals = at('repeating')
    facts.repeating.messageIds = ids('repeating')
    facts.texts = listener.texts()
    facts.errors = listener.errors.map(e => e.error)
  }
  channel.removeAllMessageListeners()
}

async function unsubscribe(facts) {
  const sports = (await join('sports')).channel
  const stays = listen(sports)
  const leaves = listen(sports)
  const leavesSelector = listen(sports, "team = 'red'")
  await Promise.all([ready(stays), ready(leaves), ready(leavesSelector)])
  await publish('sports', 'before', { team: 'red' })
  await until("'before' at the three listeners", () =>
    [stays, leaves, leavesSelector].every(l => l.has('before'))
  )
  sports.removeMessageListener(leaves.callback)
  sports.removeMessageListener("team = 'red'", leavesSelector.callback)
  // The server handles a socket's packets in order: once a listener asked for after the
  // SUB_OFFs is ready, they have been handled.
  const later = listen(sports)
  await ready(later)
  facts.subOffSent = {
    plain: sent('SUB_OFF', leaves.id).length,
    selector: sent('SUB_OFF', leavesSelector.id).length,
    stays: sent('SUB_OFF', stays.id).length,
  }
  await publish('sports', 'after-1', { team: 'red' })
  await publish('sports', 'after-2', { team: 'blue' })
  await publish('sports', 'end', { team: 'red' })
  try {
    await until("'end' at the remaining listeners", () => stays.has('end') && later.has('end'))
  } finally {
    facts.stays = stays.texts()
    facts.later = later.texts()
    facts.leaves = leaves.texts()
    facts.leavesSelector = leavesSelector.texts()
    // What the server still sent for the removed ids (the SDK would drop it silently).
    const [plainOff] = sent('SUB_OFF', leaves.id)
    const [selectorOff] = sent('SUB_OFF', leavesSelector.id)
    facts.sentAfterRemoval = {
      plain: plainOff ? deliveriesAfter(leaves.id, plainOff) : null,
      selector: selectorOff ? deliveriesAfter(leavesSelector.id, selectorOff) : null,
    }
  }
  sports.removeAllMessageListeners()
}

async function permissions(facts) {
  const vip = (await join('vip')).channel
  // Anonymous: the listener is refused with 5008.
  const anonymous = listen(vip)
  try {
    await until('the anonymous vip listener to be refused', () => anonymous.errors.length > 0)
  } finally {
    facts.anonymous = { errors: anonymous.errors.map(e => e.error), texts: anonymous.texts() }
  }

  // The SDK sends SET_USER_TOKEN itself on login and logout; keep its answers.
  const tokenAnswers = []
  const setUserToken = Backendless.RT.methods.setUserToken
  Backendless.RT.methods.setUserToken = options => {
    const answer = { sent: options?.userToken ? 'token' : String(options?.userToken) }
    tokenAnswers.push(answer)
    const promise = setUserToken(options)
    promise.then(
      value => { answer.result = value ?? null; changed() },
      error => { answer.error = error; changed() }
    )
    return promise
  }
  facts.tokenAnswers = tokenAnswers

  const email = `e2e-${Date.now()}@example.com`
  const password = 'correct horse battery staple'
  const registered = await Backendless.UserService.register({ email, password })
  facts.registered = { objectId: registered.objectId ?? null, email: registered.email ?? null }
  const user = await Backendless.UserService.login(email, password)
  facts.loggedIn = { objectId: user.objectId ?? null, hasToken: !!user['user-token'] }

  // Logged in, on the same socket: the listener is accepted and gets messages.
  const member = listen(vip)
  facts.socketsBeforeLogout = sockets.length
  try {
    await ready(member)
    await publish('vip', 'vip-1', {})
    await until("'vip-1' at the logged-in listener", () => member.has('vip-1'))
  } finally {
    facts.member = { texts: member.texts(), errors: member.errors.map(e => e.error) }
  }
  // A listener elsewhere, to tell when later deliveries have had their chance.
  const news = channels.news
  const probe = listen(news)
  await ready(probe)

  await Backendless.UserService.logout()
  try {
    await until('the vip listener to be ended after logout', () => member.errors.length > 0)
  } finally {
    facts.afterLogout = { errors: member.errors.map(e => e.error) }
  }
  facts.vip2Answer = await publish('vip', 'vip-2', {}) // anonymous publishing is allowed
  await publish('news', 'vip-probe', {})
  try {
    await until("'vip-probe' at the news listener", () => probe.has('vip-probe'))
    await until('the answers to SET_USER_TOKEN', () =>
      tokenAnswers.length >= 2 && tokenAnswers.every(a => 'result' in a || 'error' in a)
    )
  } finally {
    facts.member.texts = member.texts()
    const [ended] = received('SUB_RES', member.id).filter(w => w.data.error)
    facts.sentAfterLogout = ended ? deliveriesAfter(member.id, ended) : null
    facts.socketsAfterLogout = sockets.length
    Backendless.RT.methods.setUserToken = setUserToken
  }
  news.removeMessageListener(probe.callback)
}

async function reconnect(facts) {
  const resume = (await join('resume')).channel
  const listener = listen(resume)
  await ready(listener)
  await publish('resume', 'before', {})
  await until("'before'", () => listener.has('before'))

  const old = await Backendless.RT.session.getSocket()
  const before = sockets.find(s => s.io === old.ioSocket)
  facts.transportBeforeDrop = old.ioSocket.io.engine.transport.name
  facts.clientIdBefore = before?.clientId ?? null
  const subscriptions = Backendless.RT.subscriptions.subscriptions
  facts.messageListenersAtDrop = Object.values(subscriptions).filter(
    s => s.data.name === 'PUB_SUB_MESSAGES'
  ).length

  // Hold the SDK's reconnect until the messages are published: it resolves the host first.
  let open
  const gate = new Promise(resolve => (open = resolve))
  const config = Backendless.RT.config
  const resolveHost = config.hostResolver
  config.hostResolver = async () => {
    await gate
    return resolveHost()
  }
  const socketsBefore = sockets.length
  const connectsBefore = connects.length
  const disconnectsBefore = disconnects.length
  try {
    old.ioSocket.io.engine.close() // the transport goes away; no socket.io DISCONNECT is sent
    await until('the SDK to notice the drop', () => disconnects.length > disconnectsBefore)
    facts.disconnectReason = disconnects.at(-1).reason
    facts.downAnswers = [await publish('resume', 'down-1', {})]
    facts.downAnswers.push(await publish('resume', 'down-2', {}))
    facts.publishedWhileDown = sockets.length === socketsBefore
  } finally {
    config.hostResolver = resolveHost
    open()
  }
  await until('the SDK to reconnect', () => connects.length > connectsBefore)
  const socket = currentSocket()
  facts.reconnectedAt = connects.at(-1)
  facts.clientIdAfter = sockets.at(-1).clientId
  try {
    await until("'down-1' and 'down-2' after the reconnect", () =>
      listener.has('down-1') && listener.has('down-2')
    )
    await ready(listener, socket)
    await publish('resume', 'after-1', {})
    await publish('resume', 'after-2', {})
    await publish('resume', 'end', {})
    await until("'end'", () => listener.has('end'))
  } finally {
    facts.texts = listener.texts()
    facts.arrivals = Object.fromEntries(listener.got.map(g => [g.message.message, g.at]))
    facts.subOnAgain = sent('SUB_ON', listener.id, socket).length
    facts.subReadyAgain = received('SUB_READY', listener.id, socket).length
    facts.errors = listener.errors.map(e => e.error)
  }
}

// -- the run ----------------------------------------------------------------------------------

try {
  Backendless.serverURL = SERVER
  Backendless.initApp(APP_ID, API_KEY)
  const rt = Backendless.RT
  const connect = RTSocket.prototype.connect
  RTSocket.prototype.connect = function () {
    tap(this)
    return connect.call(this)
  }
  rt.addConnectEventListener(() => {
    connects.push(Date.now())
    changed()
  })
  rt.addDisconnectEventListener(reason => {
    disconnects.push({ at: Date.now(), reason: String(reason) })
    changed()
  })
  await step('subscribe', subscribe)
  if (result.steps.subscribe.error === null) {
    await step('listeners', listeners)
    await step('timers', timers)
    await step('unsubscribe', unsubscribe)
    await step('permissions', permissions)
    await step('reconnect', reconnect)
  }
  result.sockets = sockets.map(s => ({ n: s.n, clientId: s.clientId }))
  result.disconnects = disconnects
  clearTimeout(watchdog)
  finish(0)
  // Node exits by itself once the SDK has closed its socket; if something keeps it alive:
  Backendless.RT.terminate()
  setTimeout(() => {
    process.stderr.write('sdk_realtime.mjs: still running after Backendless.RT.terminate()\n')
    process.exit(4)
  }, 3000).unref()
} catch (error) {
  process.stderr.write(`sdk_realtime.mjs: ${error?.stack || error}\n`)
  result.error = String(error?.stack || error)
  finish(1)
  process.exit(1)
}
