import { expect } from 'chai';
import { mkdir, open, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ManifestSnapshot, ManifestWatcher } from '../../../src/watcher/index.js';
import {
  ChangeRecorder,
  createWatcher,
  effectiveNames,
  effectivePriorities,
  fileNames,
  makeTempDir,
  multiDocument,
  removeTempDir,
  testParse,
  xdpProgram,
} from './helpers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Writes `text` into `file` in place, as a slow writer does: up to the end of `cutAfter`, a
 * pause of `pauseMs`, then the rest.
 */
async function writeInTwoParts(file: string, text: string, cutAfter: string, pauseMs: number) {
  const cut = text.indexOf(cutAfter) + cutAfter.length;
  const handle = await open(file, 'w');
  try {
    await handle.write(text.slice(0, cut));
    await sleep(pauseMs);
    await handle.write(text.slice(cut));
  } finally {
    await handle.close();
  }
}

/** Writes `file` as deployment tools do: a hidden temp file renamed into place. */
async function put(file: string, text: string): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  await writeFile(temp, text);
  await rename(temp, file);
}

describe('ManifestWatcher', () => {
  let tempDir: string | undefined;
  let dir: string;
  let watcher: ManifestWatcher | undefined;

  beforeEach(async () => {
    tempDir = await makeTempDir();
    dir = path.join(tempDir, 'programs.d');
    await mkdir(dir);
  });

  afterEach(async () => {
    await watcher?.close();
    watcher = undefined;
    await removeTempDir(tempDir);
  });

  /** Debug messages the watcher logged. */
  let logged: string[] = [];
  const recordingLogger = {
    debug: (_fields: object, message: string) => void logged.push(message),
    info: () => undefined,
    warn: () => undefined,
    error: () => undefined,
  };

  async function startWatching(options: { debounceMs?: number } = {}) {
    logged = [];
    watcher = createWatcher(dir, { ...options, logger: recordingLogger });
    const recorder = new ChangeRecorder(watcher);
    const initial = await watcher.start();
    return { watcher, recorder, initial };
  }

  const hasProgram = (name: string) => (snapshot: ManifestSnapshot) =>
    effectiveNames(snapshot).includes(`XdpProgram/${name}`);

  describe('start', () => {
    it('reads every manifest below the dir, sorted by path, and nothing else', async () => {
      await mkdir(path.join(dir, 'edge'));
      await mkdir(path.join(dir, '.git', 'objects'), { recursive: true });
      await writeFile(path.join(dir, 'b.yaml'), xdpProgram('b-prog'));
      await writeFile(path.join(dir, 'a.yml'), xdpProgram('a-prog'));
      await writeFile(path.join(dir, 'edge', 'c.yaml'), xdpProgram('c-prog', 5, 'TcProgram'));
      await writeFile(path.join(dir, 'b.status.yaml'), xdpProgram('sidecar'));
      await writeFile(path.join(dir, '.hidden.yaml'), xdpProgram('hidden'));
      await writeFile(path.join(dir, '.git', 'objects', 'x.yaml'), xdpProgram('in-git'));
      await writeFile(path.join(dir, 'README.md'), '# not a manifest\n');

      const { initial } = await startWatching();

      expect(initial.dir).to.equal(dir);
      expect(initial.dirMissing).to.equal(false);
      expect(fileNames(initial)).to.deep.equal(['a.yml', 'b.yaml', 'edge/c.yaml']);
      expect(effectiveNames(initial)).to.deep.equal([
        'TcProgram/c-prog',
        'XdpProgram/a-prog',
        'XdpProgram/b-prog',
      ]);
      const [first] = initial.files;
      expect(first.effective[0]).to.include({ file: path.join(dir, 'a.yml'), index: 0 });
    });

    it('reports a missing dir and picks it up once it is created', async () => {
      await rm(dir, { recursive: true });
      const { recorder, initial } = await startWatching();
      expect(initial).to.deep.include({ dirMissing: true, files: [] });

      const created = recorder.next('the dir created', (snapshot) => !snapshot.dirMissing);
      const staging = path.join(tempDir!, 'staging');
      await mkdir(staging);
      await writeFile(path.join(staging, 'late.yaml'), xdpProgram('late'));
      await rename(staging, dir);

      expect(effectiveNames(await created)).to.deep.equal(['XdpProgram/late']);
    });
  });

  describe('file events', () => {
    it('emits one change per added, edited and deleted file', async () => {
      const { recorder } = await startWatching();
      const file = path.join(dir, 'one.yaml');

      const added = recorder.next('one.yaml added', (snapshot) => snapshot.files.length === 1);
      await writeFile(file, xdpProgram('one', 10));
      expect(effectivePriorities(await added)).to.deep.equal({ one: 10 });

      const edited = recorder.next('priority 20', (s) => effectivePriorities(s).one === 20);
      await writeFile(file, xdpProgram('one', 20));
      await edited;

      const deleted = recorder.next('one.yaml deleted', (snapshot) => snapshot.files.length === 0);
      await unlink(file);
      expect(effectiveNames(await deleted)).to.deep.equal([]);

      expect(recorder.changes).to.have.length(3);
      expect(recorder.errors).to.deep.equal([]);
    });

    it('turns a burst of 50 files renamed into place into exactly one change', async () => {
      const { recorder } = await startWatching({ debounceMs: 150 });

      const all = recorder.next('50 files', (snapshot) => snapshot.files.length >= 50);
      for (let number = 0; number < 50; number++) {
        await put(path.join(dir, `p${number}.yaml`), xdpProgram(`prog-${number}`));
      }
      const snapshot = await all;
      expect(snapshot.files).to.have.length(50);

      // A later, separate change proves no straggler of the burst was still on its way.
      const sentinel = recorder.next('sentinel', (next) => next.files.length === 51);
      await put(path.join(dir, 'sentinel.yaml'), xdpProgram('sentinel'));
      await sentinel;
      expect(recorder.changes).to.have.length(2);
    });

    it('ignores hidden folders, hidden files and status sidecars', async () => {
      await mkdir(path.join(dir, '.git'));
      const { recorder } = await startWatching();

      await writeFile(path.join(dir, '.git', 'HEAD.yaml'), xdpProgram('git-head'));
      await writeFile(path.join(dir, '.tmp-x.yaml'), xdpProgram('editor-tmp'));
      await writeFile(path.join(dir, 'x.status.yaml'), xdpProgram('sidecar'));
      await writeFile(path.join(dir, 'x.status.yml'), xdpProgram('sidecar-yml'));
      const sentinel = recorder.next('sentinel', (snapshot) => snapshot.files.length > 0);
      await writeFile(path.join(dir, 'sentinel.yaml'), xdpProgram('sentinel'));

      const snapshot = await sentinel;
      expect(fileNames(snapshot)).to.deep.equal(['sentinel.yaml']);
      expect(recorder.changes).to.have.length(1);
    });

    it('picks up a file written under a hidden name and renamed into place', async () => {
      const { recorder } = await startWatching();

      const renamed = recorder.next('placed.yaml', (snapshot) => snapshot.files.length === 1);
      const hiddenPath = path.join(dir, '.tmp-placed.yaml');
      await writeFile(hiddenPath, xdpProgram('placed'));
      await rename(hiddenPath, path.join(dir, 'placed.yaml'));

      const snapshot = await renamed;
      expect(fileNames(snapshot)).to.deep.equal(['placed.yaml']);
      expect(effectiveNames(snapshot)).to.deep.equal(['XdpProgram/placed']);
    });

    it('sees an editor replacing a file by rename, and later edits of the new file', async () => {
      const file = path.join(dir, 'edited.yaml');
      await writeFile(file, xdpProgram('edited', 1));
      const { recorder } = await startWatching();

      const replaced = recorder.next('priority 2', (s) => effectivePriorities(s).edited === 2);
      const swapFile = path.join(dir, '.edited.yaml.swp');
      await writeFile(swapFile, xdpProgram('edited', 2));
      await rename(swapFile, file);
      await replaced;

      const edited = recorder.next('priority 3', (s) => effectivePriorities(s).edited === 3);
      await writeFile(file, xdpProgram('edited', 3));
      await edited;
    });
  });

  describe('lost events', () => {
    it('sees a second write that chokidar swallowed (within 50 ms of the first)', async () => {
      const file = path.join(dir, 'twice.yaml');
      await writeFile(file, xdpProgram('twice', 10));
      const { recorder } = await startWatching({ debounceMs: 5 });

      const first = recorder.next('priority 20', (s) => effectivePriorities(s).twice === 20);
      await writeFile(file, xdpProgram('twice', 20));
      await first;
      // chokidar drops a 'change' of the same path this soon after the last one; only the
      // watcher's second look can see it.
      const second = recorder.next('priority 30', (s) => effectivePriorities(s).twice === 30);
      await writeFile(file, xdpProgram('twice', 30));
      expect(effectivePriorities(await second)).to.deep.equal({ twice: 30 });
    });

    it('sees a symlinked manifest re-pointed twice in quick succession', async () => {
      const targets = path.join(tempDir!, 'targets');
      await mkdir(targets);
      for (const priority of [1, 2, 3]) {
        await writeFile(path.join(targets, `v${priority}.yaml`), xdpProgram('linked', priority));
      }
      const link = path.join(dir, 'linked.yaml');
      const pointAt = async (version: number) => {
        const staging = path.join(dir, `.linked.${version}`);
        await symlink(path.join(targets, `v${version}.yaml`), staging);
        await rename(staging, link);
      };
      await pointAt(1);
      const { recorder } = await startWatching({ debounceMs: 5 });

      const third = recorder.next('priority 3', (s) => effectivePriorities(s).linked === 3);
      await pointAt(2);
      await new Promise((resolve) => setTimeout(resolve, 15));
      await pointAt(3);
      expect(effectivePriorities(await third)).to.deep.equal({ linked: 3 });
    });
  });

  describe('removals', () => {
    it('never shows a program moved between files as gone, even when the move is slow', async () => {
      await writeFile(
        path.join(dir, 'a.yaml'),
        multiDocument(xdpProgram('mover'), xdpProgram('a')),
      );
      await writeFile(path.join(dir, 'b.yaml'), xdpProgram('b'));
      const { recorder } = await startWatching({ debounceMs: 5 });

      const moved = recorder.next('mover in b.yaml', (snapshot) =>
        snapshot.files.some(
          (view) =>
            view.file.endsWith('b.yaml') &&
            view.effective.some((document) => document.object.metadata.name === 'mover'),
        ),
      );
      await writeFile(path.join(dir, 'a.yaml'), xdpProgram('a'));
      // Far longer than the quiet time: the quick read sees 'mover' in neither file.
      await new Promise((resolve) => setTimeout(resolve, 60));
      await writeFile(
        path.join(dir, 'b.yaml'),
        multiDocument(xdpProgram('b'), xdpProgram('mover')),
      );
      await moved;

      for (const snapshot of recorder.changes) {
        expect(effectiveNames(snapshot)).to.include('XdpProgram/mover');
      }
    });

    it('keeps a program moved by renames even when a second look falls mid-move', async () => {
      await put(path.join(dir, 'a.yaml'), multiDocument(xdpProgram('mover'), xdpProgram('a')));
      await put(path.join(dir, 'b.yaml'), xdpProgram('b'));
      await put(path.join(dir, 'c.yaml'), xdpProgram('c'));
      const { recorder } = await startWatching({ debounceMs: 5 });

      const files = ['a', 'b'];
      for (let round = 0; round < 3; round++) {
        const [from, to] = round % 2 === 0 ? files : [...files].reverse();
        const moved = recorder.next(`mover in ${to}.yaml`, (snapshot) =>
          snapshot.files.some(
            (view) =>
              view.file.endsWith(`${to}.yaml`) &&
              view.effective.some((document) => document.object.metadata.name === 'mover'),
          ),
        );
        // An unrelated change first: its second look is due just as the move begins.
        await put(path.join(dir, 'c.yaml'), xdpProgram('c', 10 + round));
        await sleep(250);
        await put(path.join(dir, `${from}.yaml`), xdpProgram(from));
        await sleep(60);
        await put(path.join(dir, `${to}.yaml`), multiDocument(xdpProgram(to), xdpProgram('mover')));
        await moved;
      }

      for (const snapshot of recorder.changes) {
        expect(effectiveNames(snapshot)).to.include('XdpProgram/mover');
      }
    });

    it('applies a removal once the second look still finds it', async () => {
      await writeFile(path.join(dir, 'gone.yaml'), xdpProgram('gone'));
      await writeFile(path.join(dir, 'stays.yaml'), xdpProgram('stays'));
      const { recorder } = await startWatching({ debounceMs: 5 });

      const removed = recorder.next('gone removed', (snapshot) => snapshot.files.length === 1);
      await unlink(path.join(dir, 'gone.yaml'));
      expect(effectiveNames(await removed)).to.deep.equal(['XdpProgram/stays']);
      expect(recorder.changes).to.have.length(1);
    });
  });

  describe('writers', () => {
    it('does not apply a file written in place until its writer is done', async () => {
      const file = path.join(dir, 'slow.yaml');
      await writeFile(file, xdpProgram('slow', 10));
      const { recorder } = await startWatching({ debounceMs: 5 });

      const done = recorder.next('priority 95', (s) => effectivePriorities(s).slow === 95);
      await writeInTwoParts(file, xdpProgram('slow', 95), 'priority: 9', 40);
      await done;

      const seen = recorder.changes.map((snapshot) => effectivePriorities(snapshot).slow);
      expect(seen).to.deep.equal([95]);
      expect(logged).to.include('files being written keep their last text until quiet');
    });

    it('never applies a file that a writer keeps rewriting half-way, nor loses its programs', async () => {
      const both = multiDocument(xdpProgram('first', 20), xdpProgram('second', 40));
      await put(path.join(dir, 'busy.yaml'), both);
      await put(path.join(dir, 'gone.yaml'), xdpProgram('gone'));
      const { recorder } = await startWatching({ debounceMs: 5 });

      const removed = recorder.next(
        'gone removed',
        (s) => !effectiveNames(s).includes('XdpProgram/gone'),
      );
      const cut = both.indexOf('---');
      const writer = (async () => {
        for (const until = Date.now() + 1500; Date.now() < until;) {
          const handle = await open(path.join(dir, 'busy.yaml'), 'w');
          await handle.write(both.slice(0, cut));
          await sleep(30);
          await handle.write(both.slice(cut));
          await handle.close();
          await sleep(70);
        }
      })();
      await sleep(200);
      await unlink(path.join(dir, 'gone.yaml'));
      await writer;
      await removed;

      for (const snapshot of recorder.changes) {
        expect(effectiveNames(snapshot)).to.include.members([
          'XdpProgram/first',
          'XdpProgram/second',
        ]);
      }
    });

    it('waits for a file written slowly into a folder the watch did not cover yet', async () => {
      const { recorder } = await startWatching({ debounceMs: 5 });
      const done = recorder.next('priority 15', (s) => effectivePriorities(s).fresh === 15);

      await mkdir(path.join(dir, 'new-folder'));
      const file = path.join(dir, 'new-folder', 'fresh.yaml');
      await writeInTwoParts(file, xdpProgram('fresh', 15), 'priority: 1', 100);
      await done;

      const seen = recorder.changes.map((snapshot) => effectivePriorities(snapshot).fresh);
      expect(seen.filter((priority) => priority !== undefined)).to.deep.equal([15]);
    });

    it('keeps the last text of a file being written when rescan() runs mid-write', async () => {
      const file = path.join(dir, 'mid.yaml');
      await put(file, xdpProgram('mid', 30));
      const { watcher: started, recorder } = await startWatching({ debounceMs: 5 });
      const text = xdpProgram('mid', 50);
      const cut = text.indexOf('priority: 5') + 'priority: 5'.length;
      const done = recorder.next('priority 50', (s) => effectivePriorities(s).mid === 50);

      const handle = await open(file, 'w');
      await handle.write(text.slice(0, cut));
      await sleep(60);
      expect(effectivePriorities(await started.rescan()).mid).to.equal(30);
      await sleep(60);
      await handle.write(text.slice(cut));
      await handle.close();
      await done;
      expect(recorder.changes.map((s) => effectivePriorities(s).mid)).to.deep.equal([50]);
    });

    it('applies a manifest renamed into place, new or over the old one, without waiting', async () => {
      const { recorder } = await startWatching({ debounceMs: 5 });
      const held = 'files being written keep their last text until quiet';
      for (const priority of [1, 2, 3]) {
        const applied = recorder.next(
          `priority ${priority}`,
          (s) => effectivePriorities(s).quick === priority,
        );
        await put(path.join(dir, 'quick.yaml'), xdpProgram('quick', priority));
        await applied;
        await sleep(300);
      }
      // Never taken for a file still being written: each came from the quick read.
      expect(logged).not.to.include(held);
    });

    it('follows a symlinked folder re-pointed by rename, and edits in its new target', async () => {
      const releases = path.join(tempDir!, 'releases');
      for (const release of ['one', 'two']) {
        await mkdir(path.join(releases, release), { recursive: true });
        await put(path.join(releases, release, 'r.yaml'), xdpProgram(`from-${release}`));
      }
      await symlink(path.join(releases, 'one'), path.join(dir, 'current'));
      const { recorder, initial } = await startWatching({ debounceMs: 5 });
      expect(effectiveNames(initial)).to.deep.equal(['XdpProgram/from-one']);

      const swapped = recorder.next('release two', (snapshot) =>
        effectiveNames(snapshot).includes('XdpProgram/from-two'),
      );
      await symlink(path.join(releases, 'two'), path.join(dir, '.current.new'));
      await rename(path.join(dir, '.current.new'), path.join(dir, 'current'));
      expect(effectiveNames(await swapped)).to.deep.equal(['XdpProgram/from-two']);
      // Past every second look: only the watch itself can report this edit.
      await sleep(800);

      const edited = recorder.next(
        'edit in release two',
        (s) => effectivePriorities(s)['from-two'] === 42,
      );
      await put(path.join(releases, 'two', 'r.yaml'), xdpProgram('from-two', 42));
      await edited;
    });
  });

  describe('parsing', () => {
    it('parses again only the files that changed; rescan parses every file', async () => {
      for (let number = 0; number < 20; number++) {
        await writeFile(path.join(dir, `p${number}.yaml`), xdpProgram(`prog-${number}`));
      }
      // Files changed within the last 100 ms are parsed on every look: let them settle first.
      await new Promise((resolve) => setTimeout(resolve, 150));
      const parsed: string[] = [];
      const countingParse = (file: string) => {
        parsed.push(path.basename(file));
        return testParse(file);
      };
      watcher = createWatcher(dir, { debounceMs: 5, parse: countingParse });
      const recorder = new ChangeRecorder(watcher);
      await watcher.start();
      expect(parsed).to.have.length(20);

      parsed.length = 0;
      const edited = recorder.next('priority 50', (s) => effectivePriorities(s)['prog-7'] === 50);
      await writeFile(path.join(dir, 'p7.yaml'), xdpProgram('prog-7', 50));
      const snapshot = await edited;
      expect(snapshot.files).to.have.length(20);
      expect(new Set(parsed)).to.deep.equal(new Set(['p7.yaml']));

      parsed.length = 0;
      await watcher.rescan();
      expect(parsed).to.have.length(20);
    });
  });

  describe('last-known-good', () => {
    it('keeps the previous objects of a file that stops being YAML', async () => {
      const file = path.join(dir, 'pair.yaml');
      await writeFile(file, multiDocument(xdpProgram('first'), xdpProgram('second')));
      const { recorder } = await startWatching();

      const broken = recorder.next(
        'a file error',
        (s) => s.files[0]?.parsed.fileError !== undefined,
      );
      await writeFile(file, 'spec: [unclosed\n  - {\n');
      const snapshot = await broken;

      const [view] = snapshot.files;
      expect(effectiveNames(snapshot)).to.deep.equal([
        'XdpProgram/first+retained',
        'XdpProgram/second+retained',
      ]);
      expect(view.effective[0].retained?.reason).to.equal(view.parsed.fileError?.message);
    });

    it('makes nothing effective for a new file that does not parse', async () => {
      const { recorder } = await startWatching();

      const added = recorder.next('bad.yaml', (snapshot) => snapshot.files.length === 1);
      await writeFile(path.join(dir, 'bad.yaml'), 'kind: [unclosed\n');
      const [view] = (await added).files;

      expect(view.parsed.fileError).to.not.equal(undefined);
      expect(view.effective).to.deep.equal([]);
    });

    it('updates the valid documents and keeps the invalid one by kind and name', async () => {
      const file = path.join(dir, 'chain.yaml');
      await writeFile(file, multiDocument(xdpProgram('alpha', 10), xdpProgram('beta', 20)));
      const { recorder } = await startWatching();

      const edited = recorder.next('alpha at 11', (s) => effectivePriorities(s).alpha === 11);
      await writeFile(file, multiDocument(xdpProgram('beta', 5000), xdpProgram('alpha', 11)));
      const snapshot = await edited;

      expect(effectiveNames(snapshot)).to.deep.equal([
        'XdpProgram/alpha',
        'XdpProgram/beta+retained',
      ]);
      expect(effectivePriorities(snapshot)).to.deep.equal({ alpha: 11, beta: 20 });
      const beta = snapshot.files[0].effective.find((entry) => entry.retained);
      expect(beta?.index).to.equal(0);
      expect(beta?.retained?.reason).to.match(/priority/);
    });

    it('keeps the copy at the same index for a document whose name cannot be read', async () => {
      const file = path.join(dir, 'chain.yaml');
      await writeFile(file, multiDocument(xdpProgram('alpha'), xdpProgram('beta')));
      const { recorder } = await startWatching();

      const edited = recorder.next('an invalid document', (s) =>
        s.files[0].parsed.documents.some((document) => document.errors.length > 0),
      );
      const nameless = xdpProgram('beta').replace('  name: beta\n', '  labels: {}\n');
      await writeFile(file, multiDocument(xdpProgram('alpha'), nameless));

      expect(effectiveNames(await edited)).to.deep.equal([
        'XdpProgram/alpha',
        'XdpProgram/beta+retained',
      ]);
    });

    it('drops a document removed from a file that parses', async () => {
      const file = path.join(dir, 'chain.yaml');
      await writeFile(file, multiDocument(xdpProgram('alpha'), xdpProgram('beta')));
      const { recorder } = await startWatching();

      const edited = recorder.next('one document', (s) => s.files[0]?.effective.length === 1);
      await writeFile(file, xdpProgram('alpha'));

      expect(effectiveNames(await edited)).to.deep.equal(['XdpProgram/alpha']);
    });

    it('drops everything of a removed file even after it had errors', async () => {
      const file = path.join(dir, 'gone.yaml');
      await writeFile(file, xdpProgram('gone'));
      const { recorder } = await startWatching();

      const broken = recorder.next(
        'a file error',
        (s) => s.files[0]?.parsed.fileError !== undefined,
      );
      await writeFile(file, '{');
      await broken;
      const removed = recorder.next('no files', (snapshot) => snapshot.files.length === 0);
      await unlink(file);

      expect(effectiveNames(await removed)).to.deep.equal([]);
    });
  });

  describe('manifest dir', () => {
    it('notices the dir once it appears where not even its parent existed', async () => {
      dir = path.join(tempDir!, 'etc-bpfd', 'programs.d');
      const { recorder, initial } = await startWatching();
      expect(initial.dirMissing).to.equal(true);

      const created = recorder.next('the dir created', (snapshot) => !snapshot.dirMissing);
      const staging = path.join(tempDir!, 'staging');
      await mkdir(staging);
      await writeFile(path.join(staging, 'p.yaml'), xdpProgram('appeared'));
      await mkdir(path.dirname(dir));
      await rename(staging, dir);

      expect(effectiveNames(await created)).to.deep.equal(['XdpProgram/appeared']);
    });

    it('keeps every object while the dir is gone and resumes when it is back', async () => {
      await writeFile(path.join(dir, 'keep.yaml'), xdpProgram('keep'));
      const { recorder } = await startWatching();

      const missing = recorder.next('dirMissing', (snapshot) => snapshot.dirMissing);
      await rename(dir, `${dir}.old`);
      const whileMissing = await missing;
      await rm(`${dir}.old`, { recursive: true });
      expect(effectiveNames(whileMissing)).to.deep.equal(['XdpProgram/keep+retained']);
      expect(whileMissing.files[0].effective[0].retained?.reason).to.include(dir);

      const back = recorder.next('the dir back', (snapshot) => hasProgram('fresh')(snapshot));
      await mkdir(dir);
      await writeFile(path.join(dir, 'fresh.yaml'), xdpProgram('fresh'));
      const snapshot = await back;

      expect(snapshot.dirMissing).to.equal(false);
      expect(effectiveNames(snapshot)).to.deep.equal(['XdpProgram/fresh']);
    });

    it('watches the new dir when it is deleted and recreated within one burst', async () => {
      await writeFile(path.join(dir, 'p.yaml'), xdpProgram('before'));
      const { recorder } = await startWatching();

      const recreated = recorder.next('after', hasProgram('after'));
      await rm(dir, { recursive: true });
      await mkdir(dir);
      await writeFile(path.join(dir, 'p.yaml'), xdpProgram('after'));
      await recreated;

      const edited = recorder.next('priority 3', (s) => effectivePriorities(s).after === 3);
      await writeFile(path.join(dir, 'p.yaml'), xdpProgram('after', 3));
      await edited;
    });

    it('follows a symlinked dir when the link is swapped to another release', async () => {
      const releaseOne = path.join(tempDir!, 'release-1');
      const releaseTwo = path.join(tempDir!, 'release-2');
      await mkdir(releaseOne);
      await mkdir(releaseTwo);
      await writeFile(path.join(releaseOne, 'p.yaml'), xdpProgram('from-one'));
      await writeFile(path.join(releaseTwo, 'p.yaml'), xdpProgram('from-two'));
      await rm(dir, { recursive: true });
      await symlink(releaseOne, dir);
      const { recorder, initial } = await startWatching();
      expect(effectiveNames(initial)).to.deep.equal(['XdpProgram/from-one']);

      // What `ln -sfn` does: a new link under a temporary name, renamed over the old one.
      const swapped = recorder.next('release 2', hasProgram('from-two'));
      await symlink(releaseTwo, `${dir}.new`);
      await rename(`${dir}.new`, dir);
      expect(effectiveNames(await swapped)).to.deep.equal(['XdpProgram/from-two']);
      // Past every second look: only the watch itself can report this edit.
      await sleep(800);

      const edited = recorder.next(
        'edit in release 2',
        (s) => effectivePriorities(s)['from-two'] === 7,
      );
      await writeFile(path.join(releaseTwo, 'p.yaml'), xdpProgram('from-two', 7));
      await edited;
    });
  });

  describe('symlinks', () => {
    it('follows a symlinked manifest and sees edits of its target', async () => {
      const target = path.join(tempDir!, 'managed.yaml');
      await writeFile(target, xdpProgram('managed', 1));
      await symlink(target, path.join(dir, 'managed.yaml'));
      const { recorder, initial } = await startWatching();
      expect(effectiveNames(initial)).to.deep.equal(['XdpProgram/managed']);

      const edited = recorder.next('priority 2', (s) => effectivePriorities(s).managed === 2);
      await writeFile(target, xdpProgram('managed', 2));
      await edited;
    });

    it('does not hang on symlink loops and reads each real file once', async () => {
      await mkdir(path.join(dir, 'sub'));
      await writeFile(path.join(dir, 'sub', 'inner.yaml'), xdpProgram('inner'));
      await symlink(dir, path.join(dir, 'sub', 'back-to-top'));
      await symlink(path.join(dir, 'self.yaml'), path.join(dir, 'self.yaml'));

      const { initial } = await startWatching();

      expect(fileNames(initial)).to.deep.equal(['self.yaml', 'sub/inner.yaml']);
      expect(initial.files[0].parsed.fileError?.message).to.match(/ELOOP/);
      expect(effectiveNames(initial)).to.deep.equal(['XdpProgram/inner']);
    });

    it('keeps the objects of a manifest whose link target vanished', async () => {
      const target = path.join(tempDir!, 'managed.yaml');
      await writeFile(target, xdpProgram('managed'));
      await symlink(target, path.join(dir, 'managed.yaml'));
      const { watcher: started } = await startWatching();

      await unlink(target);
      const snapshot = await started.rescan();

      expect(snapshot.files[0].parsed.fileError?.message).to.match(/ENOENT/);
      expect(effectiveNames(snapshot)).to.deep.equal(['XdpProgram/managed+retained']);
    });
  });

  describe('fs errors', () => {
    it('shows an expected fs error as the file error and emits no error', async () => {
      await writeFile(path.join(dir, 'locked.yaml'), xdpProgram('locked'));
      const denied = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
      watcher = createWatcher(dir, { parse: () => Promise.reject(denied) });
      const recorder = new ChangeRecorder(watcher);

      const [view] = (await watcher.start()).files;

      expect(view.parsed.fileError?.code).to.equal('BPFD_E_MANIFEST_UNREADABLE');
      expect(view.parsed.fileError?.message).to.match(/EACCES.*readable/);
      expect(recorder.errors).to.deep.equal([]);
    });

    it('emits an unexpected fs error and keeps the last objects of the file', async () => {
      const file = path.join(dir, 'disk.yaml');
      await writeFile(file, xdpProgram('disk'));
      let failure: Error | undefined;
      const parse = (target: string) => (failure ? Promise.reject(failure) : testParse(target));
      watcher = createWatcher(dir, { parse });
      const recorder = new ChangeRecorder(watcher);
      await watcher.start();

      failure = Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
      const snapshot = await watcher.rescan();

      expect(recorder.errors).to.deep.equal([failure]);
      expect(effectiveNames(snapshot)).to.deep.equal(['XdpProgram/disk+retained']);
      expect(snapshot.files[0].effective[0].retained?.reason).to.include('EIO');
    });
  });

  describe('rescan', () => {
    it('reads a change at once, without waiting for the burst to settle', async () => {
      const { watcher: started, recorder } = await startWatching({ debounceMs: 60_000 });

      await put(path.join(dir, 'now.yaml'), xdpProgram('now'));
      const announced = recorder.next('now.yaml', (snapshot) => snapshot.files.length === 1);
      const snapshot = await started.rescan();

      expect(effectiveNames(snapshot)).to.deep.equal(['XdpProgram/now']);
      expect(await announced).to.equal(snapshot);
      expect(started.snapshot()).to.equal(snapshot);
    });

    it('emits nothing when nothing changed', async () => {
      await writeFile(path.join(dir, 'same.yaml'), xdpProgram('same'));
      const { watcher: started, recorder, initial } = await startWatching();

      const again = await started.rescan();

      expect(again).to.deep.equal(initial);
      expect(recorder.changes).to.have.length(0);
    });
  });
});
