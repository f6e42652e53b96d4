// A real Bluesky PDS (with an in-memory PLC directory) on 127.0.0.1 for crosspost's tests.
//
//   node serve.js [--pds-port N] [--plc-port N] [--handle staedtedreieck.test]
//
// Prints ONE JSON line once it serves, then runs until SIGTERM/SIGINT:
//   {"url", "plc_url", "did", "handle", "password", "app_password", "jwt_secret", "pid"}
// `password` is the account password (to manage app passwords), `app_password` the
// secret crosspost logs in with. The PDS keeps its SQLite files and blobs in a
// temporary folder that is removed on exit.
//
// Run it from the folder setup.sh installed (NODE_PATH or cwd with node_modules).
'use strict'

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`)
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback
}

async function main() {
  const { TestNetworkNoAppView } = require('@atproto/dev-env')
  const { JWT_SECRET } = require('@atproto/dev-env/dist/const')

  const pdsPort = Number(option('pds-port', '0')) || undefined
  const plcPort = Number(option('plc-port', '0')) || undefined
  const handle = option('handle', 'staedtedreieck.test')
  const password = option('password', 'staedtedreieck-account-password')
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'crosspost-pds-'))
  fs.mkdirSync(path.join(data, 'data'))
  fs.mkdirSync(path.join(data, 'blobs'))

  // TestPds spreads this object over its defaults: a key set to undefined would
  // unset the default (so the port is only given when chosen).
  const network = await TestNetworkNoAppView.create({
    plc: plcPort ? { port: plcPort } : {},
    pds: {
      ...(pdsPort ? { port: pdsPort } : {}),
      hostname: 'localhost',
      dataDirectory: path.join(data, 'data'),
      blobstoreDiskLocation: path.join(data, 'blobs'),
      // No AppView: app.bsky.* reads are not served (as on a bare PDS), and nothing
      // tries to reach a host outside this machine.
      bskyAppViewUrl: undefined,
      bskyAppViewDid: undefined,
      bskyAppViewCdnUrlPattern: undefined,
      modServiceUrl: undefined,
      modServiceDid: undefined,
      crawlers: [],
    },
  })

  const agent = network.pds.getClient()
  await agent.createAccount({ handle, email: 'kontakt@staedtedreieck.test', password })
  await agent.login({ identifier: handle, password })
  const appPassword = await agent.com.atproto.server.createAppPassword({ name: 'crosspost' })

  let closing = false
  const close = async () => {
    if (closing) return
    closing = true
    try {
      await network.close()
    } finally {
      fs.rmSync(data, { recursive: true, force: true })
      process.exit(0)
    }
  }
  process.on('SIGTERM', close)
  process.on('SIGINT', close)

  process.stdout.write(
    JSON.stringify({
      url: network.pds.url,
      plc_url: network.plc.url,
      did: agent.session.did,
      handle,
      password,
      app_password: appPassword.data.password,
      jwt_secret: JWT_SECRET,
      pid: process.pid,
    }) + '\n',
  )
}

main().catch((err) => {
  process.stderr.write(`serve.js: ${err && err.stack ? err.stack : err}\n`)
  if (err && err.cause) process.stderr.write(`caused by: ${err.cause.stack || err.cause}\n`)
  process.exit(1)
})
