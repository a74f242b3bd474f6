import { expect } from 'chai';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  ManifestTreeWatch,
  absorbFsError,
  listManifestFiles,
  rawActivity,
} from '../../../src/watcher/fs-handler.js';
import { makeTempDir, removeTempDir, xdpProgram } from './helpers.js';

describe('manifest tree', () => {
  let tempDir: string | undefined;
  let dir: string;

  beforeEach(async () => {
    tempDir = await makeTempDir();
    dir = path.join(tempDir, 'programs.d');
    await mkdir(path.join(dir, 'team', 'nested'), { recursive: true });
  });

  afterEach(async () => {
    await removeTempDir(tempDir);
  });

  async function addGitObjects(count: number): Promise<void> {
    for (let number = 0; number < count; number++) {
      const objectDir = path.join(dir, '.git', 'objects', number.toString(16).padStart(2, '0'));
      await mkdir(objectDir, { recursive: true });
      await writeFile(path.join(objectDir, 'object.yaml'), 'blob\n');
    }
  }

  describe('ManifestTreeWatch', () => {
    it('holds no watch on hidden folders', async () => {
      await addGitObjects(40);
      await writeFile(path.join(dir, 'team', 'nested', 'p.yaml'), xdpProgram('p'));
      const treeWatch = new ManifestTreeWatch(dir, { onActivity: () => {}, onError: () => {} });

      try {
        expect(await treeWatch.sync({ restart: false })).to.deep.equal({ present: true });
        const watched = treeWatch.watchedDirs().map((watchedDir) => path.relative(dir, watchedDir));

        expect(watched).to.include.members(['', 'team', path.join('team', 'nested')]);
        expect(watched.filter((watchedDir) => watchedDir.includes('.git'))).to.deep.equal([]);
      } finally {
        await treeWatch.close();
      }
    });

    it('cuts links back to an enclosing folder, also through another link', async () => {
      const shared = path.join(tempDir!, 'shared');
      await mkdir(shared);
      await symlink(shared, path.join(dir, 'team', 'shared'));
      await symlink(dir, path.join(shared, 'back-to-top'));
      await symlink(path.join(dir, 'team'), path.join(dir, 'team', 'nested', 'up'));
      const treeWatch = new ManifestTreeWatch(dir, { onActivity: () => {}, onError: () => {} });

      try {
        await treeWatch.sync({ restart: false });
        const watched = treeWatch.watchedDirs().map((watchedDir) => path.relative(dir, watchedDir));

        expect(watched.filter((watchedDir) => !watchedDir.startsWith('..')).sort()).to.deep.equal([
          '',
          'team',
          path.join('team', 'nested'),
          path.join('team', 'shared'),
        ]);
      } finally {
        await treeWatch.close();
      }
    });

    it('reports a dir that is not there', async () => {
      const missing = path.join(dir, 'absent');
      const treeWatch = new ManifestTreeWatch(missing, { onActivity: () => {}, onError: () => {} });

      try {
        const status = await treeWatch.sync({ restart: false });
        expect(status).to.deep.equal({ present: false, reason: `${missing} does not exist` });
        expect(treeWatch.watchedDirs()).to.deep.equal([]);
      } finally {
        await treeWatch.close();
      }
    });
  });

  describe('listManifestFiles', () => {
    it('lists manifests through symlinked folders and cuts links back to an ancestor', async () => {
      const shared = path.join(tempDir!, 'shared');
      await mkdir(shared);
      await writeFile(path.join(shared, 's.yaml'), xdpProgram('s'));
      await symlink(shared, path.join(dir, 'team', 'shared'));
      await symlink(dir, path.join(dir, 'team', 'nested', 'top'));
      await writeFile(path.join(dir, 'team', 'nested', 'n.yml'), xdpProgram('n'));

      const listing = await listManifestFiles(dir);

      expect(listing.files.map(({ file }) => path.relative(dir, file))).to.deep.equal([
        path.join('team', 'nested', 'n.yml'),
        path.join('team', 'shared', 's.yaml'),
      ]);
      expect(listing.unreadableDirs).to.deep.equal([]);
    });

    it('lists a dangling manifest link as a file that cannot be read', async () => {
      await symlink(path.join(tempDir!, 'nowhere.yaml'), path.join(dir, 'dangling.yaml'));
      await symlink(path.join(tempDir!, 'nowhere.txt'), path.join(dir, 'dangling.txt'));

      const { files } = await listManifestFiles(dir);

      expect(files).to.have.length(1);
      expect(files[0].file).to.equal(path.join(dir, 'dangling.yaml'));
      expect(files[0].unreadable?.message).to.match(/ENOENT/);
    });
  });

  describe('absorbFsError', () => {
    it('absorbs the errors a checkout or one unreadable file produces', () => {
      for (const code of ['ENOENT', 'ENOTDIR', 'EACCES', 'EPERM', 'ELOOP']) {
        const error = Object.assign(new Error(code), { code });
        const absorbed = absorbFsError(error, '/m/x.yaml');

        expect(absorbed?.file).to.equal('/m/x.yaml');
        expect(absorbed?.message).to.include(code);
      }
    });

    it('leaves every other error to the caller', () => {
      for (const code of ['EIO', 'ENOSPC', 'EMFILE']) {
        expect(absorbFsError(Object.assign(new Error(code), { code }), '/m/x.yaml')).to.equal(
          undefined,
        );
      }
      expect(absorbFsError(new TypeError('bug'), '/m/x.yaml')).to.equal(undefined);
    });
  });
});

describe('rawActivity', () => {
  it('calls an in-place change of a manifest, seen by its folder, a write', () => {
    expect(rawActivity('change', 'xdp.yaml', 'folder')).to.equal('write');
    expect(rawActivity('change', 'tc.yml', 'folder')).to.equal('write');
  });

  it('calls a change seen by the watch of a symlinked manifest a write, not of a plain file', () => {
    expect(rawActivity('change', 'linked.yaml', 'linked-file')).to.equal('write');
    // A file renamed over another changes the old one's link count: no write in progress.
    expect(rawActivity('change', 'xdp.yaml', 'file')).to.equal('entry');
  });

  it('calls entries created, removed or renamed, and changes of other names, entry events', () => {
    expect(rawActivity('rename', 'xdp.yaml', 'folder')).to.equal('entry');
    expect(rawActivity('rename', 'current', 'folder')).to.equal('entry');
    expect(rawActivity('change', 'README.md', 'folder')).to.equal('entry');
    expect(rawActivity('change', null, 'folder')).to.equal('entry');
  });

  it('ignores hidden temp files and status sidecars', () => {
    expect(rawActivity('change', '.xdp.yaml.swp', 'folder')).to.equal(undefined);
    expect(rawActivity('rename', '.xdp.status.yaml.123.tmp', 'folder')).to.equal(undefined);
    expect(rawActivity('change', 'xdp.status.yaml', 'folder')).to.equal(undefined);
    expect(rawActivity('rename', 'xdp.status.yml', 'folder')).to.equal(undefined);
  });
});
