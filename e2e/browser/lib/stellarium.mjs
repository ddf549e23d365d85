// Stellarium (Debian's `stellarium`, a planetarium on OpenGL and Qt) as an x11 instance: the
// stand-in for OpenSpace in the tests. Its settings make it start fast and stay off the network:
// - a user folder of its own per test (config.ini: Debian's defaults with OVERRIDES), removed by
//   `remove()`;
// - every plugin off (Satellites, Exoplanets, Novae and MeteorShowers fetch catalogues online)
//   and a fixed location (`auto` asks an online service where this machine is);
// - `unshare -rn`: it runs in a network namespace of its own with nothing in it (a user namespace
//   makes that possible without root), so nothing it tries can leave this machine. Its X
//   connection is the display's socket file, which works across network namespaces.
// - no star twinkle, and a startup script (run once its window shows the sky) that stops the
//   sky's clock, so that a still view gives still frames and a drag's effect can be measured;
//   the script's line in output.txt is how a test knows the sky is drawn (`skyReady()`): its
//   first window is a splash screen, which the agent's window readiness already counts.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Settings changed from Debian's default_cfg.ini (Stellarium reads no defaults for keys missing
 * from a config.ini it finds, and crashes without them): section -> key -> value. */
const OVERRIDES = {
  plugins_load_at_startup: { Oculars: 'false', Satellites: 'false', SolarSystemEditor: 'false', Exoplanets: 'false',
    MeteorShowers: 'false', Novae: 'false', FOV: 'false' },
  video: { fullscreen: 'false', maximum_fps: '30' },
  init_location: { location: 'Paris, Western Europe' },
  stars: { flag_star_twinkle: 'false' },
};
const DEFAULTS = '/usr/share/stellarium/data/default_cfg.ini';
const READY = 'openspace-test: the sky is drawn';

/** default_cfg.ini with OVERRIDES applied (keys replaced in place, missing ones added). */
function config() {
  const out = [];
  let section = null;
  const pending = () => ({ ...(OVERRIDES[section] ?? {}) });
  let left = {};
  const flush = () => { for (const [k, v] of Object.entries(left)) out.push(`${k} = ${v}`); };
  for (const line of readFileSync(DEFAULTS, 'utf8').split('\n')) {
    const header = line.match(/^\[(.+)\]\s*$/);
    if (header) {
      flush();
      section = header[1];
      left = pending();
      out.push(line);
      continue;
    }
    const key = line.match(/^([A-Za-z0-9_]+)\s*=/)?.[1];
    if (key && key in left) {
      out.push(`${key} = ${left[key]}`);
      delete left[key];
    } else {
      out.push(line);
    }
  }
  flush();
  return out.join('\n');
}

/** A Stellarium user folder and the --instance-command that runs Stellarium on it. */
export function stellarium() {
  const dir = mkdtempSync(path.join(tmpdir(), 'osk-stellarium-'));
  writeFileSync(path.join(dir, 'config.ini'), config());
  mkdirSync(path.join(dir, 'scripts'));
  writeFileSync(path.join(dir, 'scripts', 'openspace-test.ssc'), `core.setTimeRate(0);\ncore.output("${READY}");\n`);
  // Dusk over Paris: a sky gradient above the landscape, a few bright stars and planets.
  const command = `unshare -rn env HOME=${dir} stellarium --user-dir ${dir} --full-screen no --startup-script openspace-test.ssc ` +
    `--sky-date 20240621 --sky-time 21:45:00 --latitude 48.85 --longitude 2.35 --altitude 35 --fov 90`;
  const skyReady = () => existsSync(path.join(dir, 'output.txt')) && readFileSync(path.join(dir, 'output.txt'), 'utf8').includes(READY);
  return { dir, command, skyReady, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
