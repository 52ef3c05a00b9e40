/*
 * Unit tests for supervisor/trust.c: which paths may hold policy.  The
 * files are made in a fresh directory under /tmp (sticky, root's: an
 * ancestor that passes), with the modes each case needs.
 */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "supervisor.h"

static char tmpdir[] = "/tmp/aj-test-trust-XXXXXX";

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void
setup(void)
{
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void
teardown(void)
{
	chmod(tmpdir, 0700);
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(trust, .init = setup, .fini = teardown);

/* tmpdir/REL (static buffer, one at a time per call site). */
static char *
at(const char *rel)
{
	char *p;

	cr_assert_geq(asprintf(&p, "%s/%s", tmpdir, rel), 0);
	return p;
}

static char *
make_dir(const char *rel, mode_t mode)
{
	char *p = at(rel);

	cr_assert_eq(mkdir(p, 0700), 0, "mkdir %s: %s", p, strerror(errno));
	cr_assert_eq(chmod(p, mode), 0);
	return p;
}

static char *
make_file(const char *rel, mode_t mode)
{
	char *p = at(rel);
	FILE *f = fopen(p, "w");

	cr_assert_not_null(f, "%s: %s", p, strerror(errno));
	fputs("hostname x\n", f);
	fclose(f);
	cr_assert_eq(chmod(p, mode), 0);
	return p;
}

static void
expect_refused(const char *path, int want, const char *why)
{
	char got[4096] = "";
	int r = aj_trust_check(path, got, sizeof(got));

	cr_assert_eq(r, want, "%s: got %d (%s), want %d", path, r, got, want);
	cr_assert_str_eq(got, why, "%s", path);
}

static void
expect_trusted(const char *path)
{
	char why[4096] = "";

	cr_assert_eq(aj_trust_check(path, why, sizeof(why)), 0, "%s: %s", path, why);
}

Test(trust, own_file_in_own_directories)
{
	char *d = make_dir("a", 0755), *f = make_file("a/p.profile", 0644);

	expect_trusted(f);
	expect_trusted(d);
	free(f);
	free(d);
}

Test(trust, directory_writable_by_others_or_group)
{
	char *d = make_dir("w", 0777), *f = make_file("w/p.profile", 0644), *want;

	cr_assert_geq(asprintf(&want, "%s is writable by group and others (mode 0777)", d), 0);
	expect_refused(f, -EPERM, want);
	free(want);
	cr_assert_eq(chmod(d, 0775), 0);
	cr_assert_geq(asprintf(&want, "%s is writable by group (mode 0775)", d), 0);
	expect_refused(f, -EPERM, want);
	free(want);
	cr_assert_eq(chmod(d, 0757), 0);
	cr_assert_geq(asprintf(&want, "%s is writable by others (mode 0757)", d), 0);
	expect_refused(f, -EPERM, want);
	free(want);
	free(f);
	free(d);
}

/* Others may add to a sticky directory but not rename or remove what is
 * ours: as an ancestor it passes (so /tmp does). */
Test(trust, sticky_ancestor_passes)
{
	char *d = make_dir("s", 01777), *f = make_file("s/p.profile", 0600);

	expect_trusted(f);
	free(f);
	free(d);
}

Test(trust, file_writable_by_others)
{
	char *f = make_file("p.profile", 0666), *want;

	cr_assert_geq(asprintf(&want, "%s is writable by group and others (mode 0666)", f), 0);
	expect_refused(f, -EPERM, want);
	free(want);
	free(f);
}

Test(trust, deeper_ancestor_is_named)
{
	char *top = make_dir("top", 0777), *mid = make_dir("top/mid", 0755);
	char *f = make_file("top/mid/p.profile", 0644), *want;

	cr_assert_geq(asprintf(&want, "%s is writable by group and others (mode 0777)", top), 0);
	expect_refused(f, -EPERM, want);
	free(want);
	free(f);
	free(mid);
	free(top);
}

/* A symlink is judged where it points and where it lives. */
Test(trust, symlinks_on_the_way)
{
	char *w = make_dir("w", 0777), *f = make_file("w/p.profile", 0644);
	char *ok = make_dir("ok", 0755), *link = at("ok/link.profile");
	char *f2 = make_file("ok/real.profile", 0644), *link2 = at("w/link.profile");
	char *dirlink = at("ok/dir"), *via = at("ok/dir/p.profile"), *want;

	cr_assert_eq(symlink(f, link), 0);
	cr_assert_geq(asprintf(&want, "%s is writable by group and others (mode 0777)", w), 0);
	expect_refused(link, -EPERM, want);
	cr_assert_eq(symlink("../w", dirlink), 0);
	expect_refused(via, -EPERM, want);
	cr_assert_eq(symlink(f2, link2), 0);
	expect_refused(link2, -EPERM, want);
	free(want);
	/* Between trusted places, a link is fine. */
	cr_assert_eq(unlink(link), 0);
	cr_assert_eq(symlink("real.profile", link), 0);
	expect_trusted(link);
	free(via);
	free(dirlink);
	free(link2);
	free(f2);
	free(link);
	free(ok);
	free(f);
	free(w);
}

Test(trust, relative_paths_and_dot_dot)
{
	char *a = make_dir("a", 0755), *b = make_dir("b", 0777), *f = make_file("a/p.profile", 0644);
	char *want;

	cr_assert_eq(chdir(tmpdir), 0);
	expect_trusted("a/p.profile");
	expect_trusted("./a/../a/p.profile");
	/* ".." does not skip the check of what was passed through. */
	cr_assert_geq(asprintf(&want, "%s is writable by group and others (mode 0777)", b), 0);
	expect_refused("b/../a/p.profile", -EPERM, want);
	free(want);
	free(f);
	free(b);
	free(a);
}

Test(trust, owned_by_someone_else)
{
	char *f = make_file("p.profile", 0644), *want;

	if (geteuid() != 0)
		cr_skip_test("only root can give a file away");
	cr_assert_eq(chown(f, 65534, 65534), 0);
	cr_assert_geq(asprintf(&want, "%s is owned by uid 65534", f), 0);
	expect_refused(f, -EPERM, want);
	free(want);
	free(f);
}

Test(trust, missing_and_loops)
{
	char *f = at("nope.profile"), *loop = at("loop"), *want;

	cr_assert_geq(asprintf(&want, "%s: %s", f, strerror(ENOENT)), 0);
	expect_refused(f, -ENOENT, want);
	free(want);
	cr_assert_eq(symlink("loop", loop), 0);
	cr_assert_geq(asprintf(&want, "%s: too many symbolic links", loop), 0);
	expect_refused(loop, -ELOOP, want);
	free(want);
	free(loop);
	free(f);
}
