#!/usr/bin/env python3
"""Keep the shared cargo build cache from filling the disk.

Every clone on a machine shares one CARGO_TARGET_DIR (scripts/test.sh), so dependencies such as
RocksDB compile once. But cargo names a workspace crate's outputs by a hash that includes the
clone's path, so each clone (a CI checkout, a worktree) leaves its own full set of test binaries
behind (~150 MB each, ~30 of them), and incremental caches pile up per path and per revision.
Nothing ever deletes them: on 2026-11-23 the cache reached 64 GB and CI died with "No space left
on device".

This removes, from every profile directory of the target dir, the outputs of *this workspace's*
crates (never a dependency's) and incremental caches that were not written for `max_age`. A CI
run on a fresh clone rebuilds the workspace crates anyway (new source mtimes), so what is removed
is only what no clone has used lately; cargo rebuilds anything missing. When the disk is short
of space, the age limit drops to an hour.

Usage: prune_target.py [--max-age-hours H] TARGET_DIR [WORKSPACE_DIR]
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time

DAY = 24 * 3600
HOUR = 3600
# Below this much free space on the target dir's disk, prune anything older than an hour.
LOW_SPACE_BYTES = 20 * 1024**3
HASH = r"-[0-9a-f]{16}"


def names(workspace):
    """(package names, target names) of this workspace, minus any a dependency also uses."""
    def metadata(*extra):
        out = subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked", *extra],
            cwd=workspace, check=True, capture_output=True, text=True,
        ).stdout
        return json.loads(out)

    full = metadata()
    members = set(full["workspace_members"])
    ours_pkgs, ours_targets, theirs = set(), set(), set()
    for pkg in full["packages"]:
        mine = pkg["id"] in members
        (ours_pkgs if mine else theirs).add(pkg["name"].replace("-", "_"))
        for target in pkg["targets"]:
            (ours_targets if mine else theirs).add(target["name"].replace("-", "_"))
    # A name shared with a dependency could match that dependency's files: leave it alone.
    return ours_pkgs - theirs, ours_targets - theirs


def older_than(path, limit):
    try:
        return os.lstat(path).st_mtime < limit
    except FileNotFoundError:
        return False


def size_of(path):
    if os.path.isdir(path) and not os.path.islink(path):
        total = 0
        for root, _dirs, files in os.walk(path):
            for f in files:
                try:
                    total += os.lstat(os.path.join(root, f)).st_size
                except FileNotFoundError:
                    pass
        return total
    try:
        return os.lstat(path).st_size
    except FileNotFoundError:
        return 0


def remove(path):
    size = size_of(path)
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.remove(path)
        except FileNotFoundError:
            return 0
    return size


def prune(target_dir, workspace, max_age=None):
    if max_age is None:
        free = shutil.disk_usage(target_dir).free
        max_age = HOUR if free < LOW_SPACE_BYTES else DAY
    limit = time.time() - max_age
    pkgs, targets = names(workspace)
    artifact = re.compile(
        r"^(?:lib)?(?:%s)%s(?:\..+)?$" % ("|".join(map(re.escape, sorted(targets))), HASH)
    )
    per_package = re.compile(r"^(?:%s)%s$" % ("|".join(map(re.escape, sorted(pkgs))), HASH))
    freed = removed = 0
    for profile in sorted(os.listdir(target_dir)):
        pdir = os.path.join(target_dir, profile)
        if not os.path.isdir(os.path.join(pdir, "deps")):
            continue  # not a profile directory (tmp, doc, criterion, ...)
        candidates = []
        for sub, pattern in (
            ("deps", artifact),
            ("examples", artifact),
            (".fingerprint", per_package),
            ("build", per_package),
        ):
            d = os.path.join(pdir, sub)
            if os.path.isdir(d):
                candidates += [os.path.join(d, n) for n in os.listdir(d) if pattern.match(n)]
        inc = os.path.join(pdir, "incremental")
        if os.path.isdir(inc):
            # Incremental caches are only caches: any crate's may go once stale.
            candidates += [os.path.join(inc, n) for n in os.listdir(inc)]
        for path in candidates:
            if older_than(path, limit):
                freed += remove(path)
                removed += 1
    after = shutil.disk_usage(target_dir).free
    print(
        "[prune] %s: removed %d stale workspace outputs older than %s (%.1f GB); %.1f GB free"
        % (target_dir, removed, "%.2f h" % (max_age / HOUR), freed / 1024**3,
           after / 1024**3)
    )


def main(argv):
    args = argv[1:]
    max_age = None
    if args[:1] == ["--max-age-hours"] and len(args) >= 2:
        try:
            max_age = float(args[1]) * HOUR
        except ValueError:
            args = []
        else:
            args = args[2:]
    if len(args) not in (1, 2):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    target_dir = args[0]
    workspace = args[1] if len(args) == 2 else os.getcwd()
    if not os.path.isdir(target_dir):
        return 0  # nothing built yet
    prune(target_dir, workspace, max_age)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
