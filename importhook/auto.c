/* SPDX-License-Identifier: MIT */
/* AUTO: one step instead of three (docs/usage.md, "AUTO").
 *
 * At activation: if the archive serves this interpreter, SHARE; if it is
 * missing, or refused for what a new dump mends (another interpreter or
 * optimization level, damaged, unfinished), TRACE into a private list
 * beside it.  At exit, from libc's on_exit(), which sees the exit status:
 * when the program exited 0 and it traced, or it served but found
 * archived modules stale, a detached process runs this interpreter with
 * PYCDSMODE=DUMP over the list (traced, or the archive's own names) and
 * removes the list.
 *
 * Invariants:
 *  1. The program's exit is not delayed: the exiting process forks once
 *     and does not wait; the child detaches (setsid, its standard streams
 *     on /dev/null, every other descriptor closed), so a shell or a pipe
 *     waiting for the program's output sees it end with the program.
 *  2. Only a program that exited 0 writes, and only the process that
 *     activated (its forked children exit without dumping).
 *  3. Dumps never corrupt each other: the writer renames a whole file
 *     into place (format.md 7), and a dump that finds another AUTO dump of
 *     the same directory running (flock on the directory) leaves it to
 *     that one.
 *  4. Python processes the program starts with the inherited environment
 *     trace into the same list (PYCDSMODE=TRACE in the C environment)
 *     rather than dump their own imports over the program's archive; one
 *     given os.environ as it was at start-up does AUTO itself.
 *  5. What the dump needs of the run is taken at activation, when Python
 *     is alive: the interpreter, the flags that choose sys.path and the
 *     .pyc files (-O, -s, -P, -X), the script's path and the working
 *     directory (the archive's path made absolute with it).  The on_exit
 *     handler runs after Py_Finalize and uses none of Python. */
#include "hook.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define AUTO_MAX_ARGS 64

static struct {
    pid_t pid;            /* the process that activated (inv. 2) */
    int serving;          /* SHARE; else TRACE into list */
    char *list;           /* the trace list, or (at exit) the refresh list */
    char *archive;        /* PYCDSARCHIVE as given */
    char *cwd;            /* the working directory at activation */
    char *argv[AUTO_MAX_ARGS + 1]; /* the dumper's command line */
    int verbose;          /* PYCDSVERBOSE: keep the dumper's stderr */
} a;

static char *
utf8_dup(PyObject *s)
{
    const char *u = s != NULL && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s)
                                                    : NULL;
    return u != NULL ? strdup(u) : NULL;
}

static int
push_arg(int *n, const char *arg)
{
    if (*n >= AUTO_MAX_ARGS || (a.argv[*n] = strdup(arg)) == NULL) {
        return -1;
    }
    (*n)++;
    return 0;
}

/* inv. 4: [sys.executable, flags..., script] as DUMP must see them. */
static int
dump_command(void)
{
    PyObject *exe = cds__hook_sys("executable"); /* borrowed */
    PyObject *argv = cds__hook_sys("argv");
    PyObject *xopts = cds__hook_sys("_xoptions");
    char *s;
    int n = 0, opt = cds__hook_sys_flag("optimize");

    if ((s = utf8_dup(exe)) == NULL || s[0] == '\0') {
        free(s);
        return -1;
    }
    a.argv[n++] = s;
    for (int i = 0; i < opt && i < 2; i++) {
        if (push_arg(&n, "-O") < 0) {
            return -1;
        }
    }
    if (cds__hook_sys_flag("no_user_site") > 0 && push_arg(&n, "-s") < 0) {
        return -1;
    }
    if (cds__hook_sys_flag("safe_path") > 0 && push_arg(&n, "-P") < 0) {
        return -1;
    }
    if (xopts != NULL && PyDict_Check(xopts)) {
        PyObject *k, *v;
        Py_ssize_t pos = 0;
        while (PyDict_Next(xopts, &pos, &k, &v)) {
            const char *ks = PyUnicode_Check(k) ? PyUnicode_AsUTF8(k) : NULL;
            const char *vs = PyUnicode_Check(v) ? PyUnicode_AsUTF8(v) : NULL;
            char buf[PATH_MAX];
            if (ks == NULL) {
                PyErr_Clear();
                return -1;
            }
            snprintf(buf, sizeof(buf), vs != NULL ? "%s=%s" : "%s", ks, vs);
            if (push_arg(&n, "-X") < 0 || push_arg(&n, buf) < 0) {
                return -1;
            }
        }
    }
    /* dump_prepare (glue.py) puts the script's directory first, or the
     * working directory for -c, -m and stdin, as the run had it */
    if (argv != NULL && PyList_Check(argv) && PyList_GET_SIZE(argv) > 0) {
        const char *a0 = PyUnicode_Check(PyList_GET_ITEM(argv, 0))
                             ? PyUnicode_AsUTF8(PyList_GET_ITEM(argv, 0))
                             : NULL;
        struct stat st;
        if (a0 != NULL && a0[0] != '\0' && strcmp(a0, "-") != 0 &&
            strcmp(a0, "-c") != 0 && strcmp(a0, "-m") != 0 &&
            stat(a0, &st) == 0 && S_ISREG(st.st_mode) &&
            push_arg(&n, a0) < 0) {
            return -1;
        }
    }
    PyErr_Clear();
    a.argv[n] = NULL;
    return 0;
}

/* A private, empty file beside the archive for the list. */
static char *
make_list(void)
{
    size_t len = strlen(a.archive) + sizeof(".auto-XXXXXX.lst");
    char *path = malloc(len);
    int fd;

    if (path == NULL) {
        return NULL;
    }
    snprintf(path, len, "%s.auto-XXXXXX.lst", a.archive);
    if ((fd = mkstemps(path, 4)) < 0) {
        free(path);
        return NULL;
    }
    close(fd);
    return path;
}

/* The refresh list: every module the archive holds, one a line. */
static int
write_archive_names(const char *path)
{
    FILE *f = fopen(path, "w");
    int ok = f != NULL;

    for (uint32_t i = 0; ok && i < cds__hook.archive.header->nmodules; i++) {
        ok = fprintf(f, "%s\n", cds_module_name(&cds__hook.archive, i)) > 0;
    }
    if (f != NULL && fclose(f) != 0) {
        ok = 0;
    }
    return ok ? 0 : -1;
}

static void
set_env(const char *name, const char *value)
{
    if (value != NULL) {
        setenv(name, value, 1);
    }
    else {
        unsetenv(name);
    }
}

/* The detached child (inv. 1, 3): run the dump, remove the list. */
static void __attribute__((noreturn))
dumper(void)
{
    int null = open("/dev/null", O_RDWR);
    char dir[PATH_MAX];
    int lock, status;
    pid_t pid;

    setsid();
    signal(SIGHUP, SIG_IGN);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        if (!a.verbose) {
            dup2(null, 2);
        }
    }
    for (int fd = 3; fd < 1024; fd++) {
        close(fd);
    }
    snprintf(dir, sizeof(dir), "%s", a.archive);
    lock = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) < 0) {
        unlink(a.list);
        _exit(0); /* another AUTO dump of this directory runs */
    }
    set_env("PYCDSMODE", "DUMP");
    set_env("PYCDSLIST", a.list);
    set_env("PYCDSARCHIVE", a.archive);
    if ((pid = fork()) == 0) {
        if (a.cwd == NULL || chdir(a.cwd) == 0) {
            execve(a.argv[0], a.argv, environ);
        }
        _exit(127);
    }
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    unlink(a.list);
    _exit(0);
}

static void
at_exit(int status, void *arg)
{
    struct stat st;

    (void)arg;
    if (getpid() != a.pid) {
        return; /* inv. 2: a forked child of the program */
    }
    if (a.serving) {
        if (status != 0 || cds__hook.nstale == 0) {
            return;
        }
        if ((a.list = make_list()) == NULL) {
            return;
        }
        if (write_archive_names(a.list) < 0) {
            unlink(a.list);
            return;
        }
    }
    else if (a.list == NULL) {
        return;
    }
    else if (status != 0 || stat(a.list, &st) < 0 || st.st_size == 0) {
        unlink(a.list); /* failed, or nothing was traced */
        return;
    }
    fflush(NULL);
    if (fork() == 0) {
        dumper();
    }
    /* inv. 1: no wait; the child is init's once this process is gone */
}

/* May a new dump replace an archive that SHARE refused with rc? */
static int
rewritable(int rc)
{
    return rc == CDS_EFORMAT || rc == CDS_EVERSION || rc == CDS_ECORRUPT ||
           rc == CDS_ECHECKSUM || rc == CDS_EINCOMPLETE;
}

void
cds__auto_activate(void)
{
    struct stat st;
    char cwd[PATH_MAX];
    int rc = 0;

    if (cds__hook.config.archive == NULL) {
        cds__hook_warn("PYCDSMODE=AUTO without PYCDSARCHIVE; "
                       "using the normal import system");
        return;
    }
    a.pid = getpid();
    a.verbose = cds__hook.config.verbose;
    a.cwd = getcwd(cwd, sizeof(cwd)) != NULL ? strdup(cwd) : NULL;
    /* absolute: the program may change directory before it exits */
    if (cds__hook.config.archive[0] == '/' || a.cwd == NULL) {
        a.archive = strdup(cds__hook.config.archive);
    }
    else if ((a.archive = malloc(strlen(a.cwd) +
                                 strlen(cds__hook.config.archive) + 2)) !=
             NULL) {
        sprintf(a.archive, "%s/%s", a.cwd, cds__hook.config.archive);
    }
    if (a.archive == NULL || dump_command() < 0) {
        PyErr_Clear();
        cds__hook_warn("PYCDSMODE=AUTO: cannot record how to dump; "
                       "using the normal import system");
        return;
    }
    /* a missing archive is AUTO's first run: no warning */
    cds__hook.auto_mode = 1;
    if (stat(a.archive, &st) == 0 || errno != ENOENT) {
        cds__hook.config.mode = MODE_SHARE;
        rc = cds__share_activate();
        if (rc == 1) {
            a.serving = 1;
        }
        else if (!rewritable(rc)) {
            cds__hook.config.mode = MODE_OFF;
            return; /* refused for a reason a dump does not mend */
        }
    }
    if (!a.serving) {
        cds__hook.config.mode = MODE_TRACE;
        if ((a.list = make_list()) == NULL) {
            cds__hook_warn("PYCDSMODE=AUTO: cannot create a list beside "
                           "%s: %s; not tracing",
                           a.archive, strerror(errno));
            cds__hook.config.mode = MODE_OFF;
            return;
        }
        cds__hook.config.list = a.list;
        cds__trace_activate();
        if (cds__hook.trace_fd <= 0 || cds__hook.traced == NULL) {
            unlink(a.list);
            free(a.list);
            a.list = NULL;
            cds__hook.config.mode = MODE_OFF;
            return;
        }
        /* Python programs this one starts add to its trace instead of
         * dumping their own imports over it at their exit (os.environ,
         * read at start-up, still shows AUTO to the program) */
        setenv("PYCDSMODE", "TRACE", 1);
        setenv("PYCDSLIST", a.list, 1);
        VERBOSE(1, "pycds: auto: tracing into %s; %s is dumped at exit\n",
                a.list, a.archive);
    }
    if (on_exit(at_exit, NULL) != 0 && a.list != NULL) {
        unlink(a.list);
    }
}
