/* test_jobs.c — the job framework (control/jobs.c): id checks, QEMU's
 * status sequences and their JOB_STATUS_CHANGE events for success and
 * failure, the verb table's message, job-dismiss, query-jobs' fields; and
 * snapshot tag validation and paths (control/snapstore.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "control/jobs.h"
#include "control/snapstore.h"

struct rec {
	char seq[512];
	int runs, frees;
};

static void on_event(void *opaque, const char *name, json_t *data)
{
	struct rec *r = opaque;
	size_t len = strlen(r->seq);

	assert_string_equal(name, "JOB_STATUS_CHANGE");
	snprintf(r->seq + len, sizeof(r->seq) - len, "%s:%s ",
		 json_string_value(json_object_get(data, "id")),
		 json_string_value(json_object_get(data, "status")));
	json_decref(data);
}

static void drv_run(struct job *job)
{
	((struct rec *)job_opaque(job))->runs++;
}

static void drv_free(struct job *job)
{
	((struct rec *)job_opaque(job))->frees++;
}

static const struct job_driver drv = {
	.type = JOB_TYPE_SNAPSHOT_SAVE, .run = drv_run, .free = drv_free};

static void expect_error(struct mig_error *err, const char *desc)
{
	assert_non_null(err);
	assert_string_equal(err->desc, desc);
	mig_error_free(err);
}

static void test_ids(void **state)
{
	struct rec r = {0};
	struct jobs *js = jobs_new(on_event, &r);
	struct mig_error *err = NULL;

	assert_true(jobs_id_is_wellformed("a-b.c_9"));
	assert_false(jobs_id_is_wellformed(""));
	assert_false(jobs_id_is_wellformed("9a"));
	assert_false(jobs_id_is_wellformed("a b"));
	assert_null(job_create(js, "-x", &drv, &r, &err));
	expect_error(err, "Invalid job ID '-x'");
	err = NULL;
	assert_non_null(job_create(js, "j", &drv, &r, NULL));
	assert_null(job_create(js, "j", &drv, &r, &err));
	expect_error(err, "Job ID 'j' already in use");
	assert_string_equal(r.seq, "j:created ");
	jobs_free(js);
	assert_int_equal(r.frees, 1);
}

static void test_success_sequence(void **state)
{
	struct rec r = {0};
	struct jobs *js = jobs_new(on_event, &r);
	struct mig_error *err = NULL;
	struct job *j = job_create(js, "s", &drv, &r, NULL);
	json_t *list, *info;

	job_start(j);
	assert_int_equal(r.runs, 1);
	assert_int_equal(job_get_status(j), JOB_STATUS_RUNNING);
	assert_true(jobs_any_active(js, NULL));
	assert_false(jobs_any_active(js, j));
	assert_int_equal(jobs_dismiss(js, "s", &err), -EPERM);
	expect_error(err, "Job 's' in state 'running' cannot accept command "
			  "verb 'dismiss'");
	job_completed(j, 0, NULL);
	assert_string_equal(r.seq, "s:created s:running s:waiting s:pending "
				   "s:concluded ");
	list = jobs_query(js);
	assert_int_equal(json_array_size(list), 1);
	info = json_array_get(list, 0);
	assert_string_equal(json_string_value(json_object_get(info, "type")),
			    "snapshot-save");
	assert_int_equal(
		json_integer_value(json_object_get(info, "current-progress")),
		1);
	assert_null(json_object_get(info, "error"));
	json_decref(list);
	err = NULL;
	assert_int_equal(jobs_dismiss(js, "nope", &err), -ENOENT);
	expect_error(err, "Job not found");
	assert_int_equal(jobs_dismiss(js, "s", NULL), 0);
	assert_int_equal(r.frees, 1);
	assert_string_equal(r.seq + strlen(r.seq) - 7, "s:null ");
	list = jobs_query(js);
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);
	jobs_free(js);
}

static void test_failure_sequence(void **state)
{
	struct rec r = {0};
	struct jobs *js = jobs_new(on_event, &r);
	struct mig_error *err = NULL;
	struct job *j = job_create(js, "f", &drv, &r, NULL);
	json_t *list;

	job_start(j);
	mig_error_setg(&err, "bad \xff byte");
	job_completed(j, -EIO, err);
	mig_error_free(err);
	err = NULL;
	assert_string_equal(r.seq, "f:created f:running f:aborting "
				   "f:concluded ");
	list = jobs_query(js);
	/* invalid UTF-8 from a file must not drop the error */
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(list, 0), "error")),
			    "bad ? byte");
	json_decref(list);
	assert_int_equal(job_apply_verb(j, JOB_VERB_CANCEL, &err), -EPERM);
	expect_error(err, "Job 'f' in state 'concluded' cannot accept "
			  "command verb 'cancel'");
	jobs_free(js);
	assert_int_equal(r.frees, 1);
}

static void test_tags(void **state)
{
	struct mig_error *err = NULL;
	char big[SNAPSTORE_TAG_MAX + 2];
	static const struct {
		const char *tag;
		size_t len;
		const char *why;
	} bad[] = {
		{"", 0, "it is empty"},
		{"a\0b", 3, "it contains a NUL character"},
		{"a/b", 3, "it contains '/'"},
		{"..", 2, "it names a directory"},
		{".", 1, "it names a directory"},
		{"a\tb", 3, "it contains a control character"},
		{"a\x7f", 2, "it contains a control character"},
	};
	char want[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		assert_int_equal(
			snapstore_check_tag(bad[i].tag, bad[i].len, &err),
			-EINVAL);
		snprintf(want, sizeof(want), "Invalid snapshot tag: %s",
			 bad[i].why);
		expect_error(err, want);
	}
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	err = NULL;
	assert_int_equal(snapstore_check_tag(big, strlen(big), &err), -EINVAL);
	expect_error(err, "Invalid snapshot tag: it is longer than 200 bytes");
	big[SNAPSTORE_TAG_MAX] = '\0';
	assert_int_equal(snapstore_check_tag(big, strlen(big), NULL), 0);
	assert_int_equal(snapstore_check_tag("..a", 3, NULL), 0);
	assert_int_equal(snapstore_check_tag("snap \xc3\xa9", 7, NULL), 0);
}

static void test_store(void **state)
{
	char dir[] = "/tmp/migd-test-snapstore-XXXXXX";
	struct snapstore *s = snapstore_new();
	struct mig_error *err = NULL;
	const struct snapstore_node *n;
	char *p;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(snapstore_add(s, "disk0", dir, NULL), 0);
	assert_int_equal(snapstore_add(s, "disk0", dir, &err), -EEXIST);
	expect_error(err, "Duplicate nodes with node-name='disk0'");
	err = NULL;
	assert_int_equal(snapstore_add(s, "0disk", dir, &err), -EINVAL);
	expect_error(err, "Invalid node-name: '0disk'");
	n = snapstore_find(s, "disk0");
	assert_non_null(n);
	assert_null(snapstore_find(s, "disk1"));
	p = snapstore_path(n, "t");
	assert_true(strlen(p) > strlen(dir));
	assert_string_equal(p + strlen(dir), "/t.migd-snap");
	free(p);
	p = snapstore_part_path(n, "t");
	assert_string_equal(p + strlen(dir), "/.t.migd-snap.part");
	free(p);
	assert_false(snapstore_has(n, "t"));
	assert_int_equal(snapstore_mark(n, "t", NULL), 0);
	assert_true(snapstore_has(n, "t"));
	assert_int_equal(snapstore_mark(n, "t", NULL), -EEXIST);
	assert_int_equal(snapstore_remove(n, "t", NULL), 0);
	assert_int_equal(snapstore_remove(n, "t", NULL), 0); /* missing: ok */
	assert_false(snapstore_has(n, "t"));
	snapstore_free(s);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_success_sequence),
		cmocka_unit_test(test_failure_sequence),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
