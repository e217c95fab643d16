/* SPDX-License-Identifier: MIT */
/* pycds: the command-line tool (trace, dump, run, stats, inspect, verify).
 *
 * trace, dump, run and stats only arrange an environment and start a
 * program: the work is done by the _cds extension inside the
 * interpreter, which reads PYCDSMODE and friends (docs/usage.md).  inspect and verify read
 * an archive with the format layer alone, without Python.
 *
 * Invariants:
 *  1. trace and run exec the program: its exit status, its signals and
 *     its pid are its own.  (trace first runs a Python COMMAND once in a
 *     child, to ask whether pycds works there; run does so under -v.)
 *     dump waits for the interpreter so that it can remove its temporary
 *     list and check that an archive was written; it exits with the
 *     interpreter's status (128 + N for signal N).
 *  2. Paths put into the environment are absolute, so that they mean the
 *     same in a program that changes directory or starts others.
 *  3. A usage error exits 2 with one line saying what is wrong and a usage
 *     line; a bad pycds.yaml exits 2 with the one line only, with file and
 *     line number (the command line was not at fault); a bad archive or an
 *     unreadable file exits 1 with one line.  Nothing else is printed
 *     unless asked (-v). */
#include "cli.h"

#include "archive.h"
#include "cds.h"
#include "format.h"
#include "modlist.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* from tools/CMakeLists.txt */
#ifndef PYCDS_VERSION
#error "PYCDS_VERSION must be defined by the build"
#endif
#ifndef PYCDS_DEFAULT_PYTHON
#error "PYCDS_DEFAULT_PYTHON must be defined by the build"
#endif
#ifndef PYCDS_DEFAULT_PYTHON_VERSION
#error "PYCDS_DEFAULT_PYTHON_VERSION must be defined by the build"
#endif
#if !defined(PYCDS_SUPPORTED_MINORS) || !defined(PYCDS_SUPPORTED_TEXT)
#error "PYCDS_SUPPORTED_MINORS and PYCDS_SUPPORTED_TEXT must be defined by the build"
#endif
#ifndef PYCDS_INSTALL_PREFIX
#error "PYCDS_INSTALL_PREFIX must be defined by the build"
#endif

#define CONFIG_DEFAULT "pycds.yaml"

/* the highest PYCDSVERBOSE that means anything (importhook/loader.c) */
#define VERBOSE_MAX 2

/* What one command accepts. */
enum {
    OPT_OUTPUT = 1u << 0,   /* -o FILE */
    OPT_VERBOSE = 1u << 1,  /* -v, -vv */
    OPT_PYTHON = 1u << 2,   /* --python PY */
    OPT_RELOCATE = 1u << 3, /* --relocate */
    OPT_MODULES = 1u << 4,  /* --modules, --no-modules */
    OPT_COMMAND = 1u << 5,  /* -- COMMAND [ARGS...] */
    OPT_JSON = 1u << 6,     /* --json */
    OPT_AUTO = 1u << 7,     /* --auto */
    OPT_SELECT = 1u << 8,   /* --package, --path, --include, --exclude */
};

#define MAX_SELECT 64 /* of each of --package, --path, --include, ... */

struct command {
    const char *name;
    int (*run)(const struct command *cmd, int argc, char **argv);
    unsigned options;  /* OPT_* */
    int npositional;   /* at most this many operands before -- */
    const char *usage; /* after "pycds " */
    const char *help;
};

/* The parsed command line of one command. */
struct opts {
    const char *output;
    const char *python;
    const char *config;
    int verbose;
    bool relocate;
    bool modules;
    bool json;
    bool autodump;
    const char *packages[MAX_SELECT], *paths[MAX_SELECT];
    const char *include[MAX_SELECT], *exclude[MAX_SELECT];
    int npackages, npaths, ninclude, nexclude;
    const char *positional[1];
    int npositional;
    char **command; /* NULL-terminated, from argv */
};

/* --config given before the command name */
static const char *global_config;

/* ---------------------------------------------------------------------
 * Messages */

static void print_usage(FILE *f, const struct command *cmd);

/* inv. 3: print, and give the exit status, in one expression, so that
 * `return USAGE_ERROR(cmd, ...)` reads like cds/'s CDS_CORRUPT and a
 * static analyser sees the status. */
#define USAGE_ERROR(cmd, ...)                                               \
    (print_usage_error((cmd), __VA_ARGS__), CLI_EXIT_USAGE)
#define FAIL(...) (print_error(__VA_ARGS__), CLI_EXIT_FAIL)

/* inv. 3: "pycds: CMD: what" and the command's usage line. */
static void
print_usage_error(const struct command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
print_usage_error(const struct command *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "pycds: ");
    if (cmd != NULL) {
        fprintf(stderr, "%s: ", cmd->name);
    }
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (cmd != NULL) {
        print_usage(stderr, cmd);
    }
    else {
        fprintf(stderr, "Try 'pycds --help' for more information.\n");
    }
}

/* inv. 3: "pycds: what" for a failure that is not the user's syntax. */
static void
print_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
print_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "pycds: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void
cli_archive_error_write(const char *path, const char *message, int status)
{
    fprintf(stderr, "pycds: %s: %s (%s)\n", path, message,
            cds_status_name(status));
}

/* ---------------------------------------------------------------------
 * Paths and the environment */

/* inv. 2: path made absolute against the current directory (not
 * resolved: symbolic links stay as the user named them).  Returns a
 * malloc'd string or NULL. */
static char *
make_absolute(const char *path)
{
    char cwd[PATH_MAX];
    char *out;
    size_t n;

    if (path[0] == '/') {
        return strdup(path);
    }
    if (getcwd(cwd, sizeof(cwd)) == NULL) {
        return NULL;
    }
    while (path[0] == '.' && path[1] == '/') {
        path += 2;
        while (path[0] == '/') {
            path++;
        }
    }
    n = strlen(cwd) + 1 + strlen(path) + 1;
    if ((out = malloc(n)) != NULL) {
        snprintf(out, n, "%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/",
                 path);
    }
    return out;
}

static bool
check_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool
check_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The directory whose sitecustomize.py activates pycds where it is not
 * installed (importhook/sitecustomize.py): the build tree's
 * <builddir>/site next to <builddir>/tools/pycds (*build_tree set), else
 * the installed <prefix>/share/pycds/site.  NULL when neither exists, and
 * then the installed pycds.pth activates.  Returns a malloc'd string. */
static char *
find_activation_dir(bool *build_tree)
{
    static const char installed[] = PYCDS_INSTALL_PREFIX "/share/pycds/site";
    char exe[PATH_MAX], site[PATH_MAX + 32], probe[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash;

    *build_tree = false;
    if (n > 0) {
        exe[n] = '\0';
        if ((slash = strrchr(exe, '/')) != NULL) {
            *slash = '\0';
            snprintf(site, sizeof(site), "%s/../site", exe);
            snprintf(probe, sizeof(probe), "%s/sitecustomize.py", site);
            if (check_file(probe)) {
                char *real = realpath(site, NULL);
                *build_tree = true;
                return real != NULL ? real : strdup(site);
            }
        }
    }
    if (check_dir(installed)) {
        return strdup(installed);
    }
    return NULL;
}

static void
put_env(const char *name, const char *value, int verbose)
{
    assert(value != NULL);
    if (setenv(name, value, 1) != 0) {
        /* only ENOMEM is possible with these names */
        print_error("cannot set %s: %s", name, strerror(errno));
        exit(CLI_EXIT_FAIL);
    }
    if (verbose >= 1) {
        fprintf(stderr, "pycds: env %s=%s\n", name, value);
    }
}

/* Is word, the first of a COMMAND, a Python interpreter?  The rule is
 * simple and documented (docs/usage.md): its base name starts with
 * "python" (python3.11, python3, /opt/venv/bin/python).  env, a shell or
 * a script that starts Python is not one. */
static bool
check_python_name(const char *word)
{
    const char *slash = strrchr(word, '/');
    return strncmp(slash != NULL ? slash + 1 : word, "python", 6) == 0;
}

/* A Python process that replaces PYTHONPATH loses the build tree's
 * activation, silently (issue 6): say so under -v when COMMAND may start
 * such processes, because it is not an interpreter itself or because an
 * argument sets PYTHONPATH ("bash -c 'PYTHONPATH=/tmp python3.11 ...'",
 * "env PYTHONPATH=..."). */
static void
note_replaced_path(const struct command *cmd, char **command,
                   const char *dir)
{
    const char *why = NULL;

    for (char **a = command; why == NULL && *a != NULL; a++) {
        if (strstr(*a, "PYTHONPATH=") != NULL) {
            why = "COMMAND sets PYTHONPATH";
        }
    }
    if (why == NULL && !check_python_name(command[0])) {
        why = "COMMAND is not a Python interpreter";
    }
    if (why != NULL) {
        fprintf(stderr,
                "pycds: %s: note: %s: Python processes with a PYTHONPATH of "
                "their own are not %s; install pycds (cmake --install) or "
                "keep %s on their PYTHONPATH\n",
                cmd->name, why,
                strcmp(cmd->name, "trace") == 0 ? "traced" : "served", dir);
    }
}

/* Put the activation directory first on PYTHONPATH, keeping what was
 * there after it (once: a pycds run inside a pycds run adds nothing).
 * -v says where activation comes from and, for a COMMAND (trace, run)
 * activated from the build tree, what can defeat it. */
static void
activate(const struct command *cmd, char **command, int verbose)
{
    bool build_tree;
    char *dir = find_activation_dir(&build_tree);
    const char *old = getenv("PYTHONPATH");
    size_t dlen, n;
    char *path;

    if (dir == NULL) {
        if (verbose >= 1) {
            fprintf(stderr, "pycds: %s: activation: no activation "
                            "directory; relying on an installed pycds.pth\n",
                    cmd->name);
        }
        return;
    }
    if (verbose >= 1) {
        fprintf(stderr,
                "pycds: %s: activation: %s/sitecustomize.py (%s), through "
                "PYTHONPATH\n",
                cmd->name, dir,
                build_tree ? "the build tree, pycds is not installed"
                           : "installed");
        if (build_tree && command != NULL) {
            note_replaced_path(cmd, command, dir);
        }
    }
    dlen = strlen(dir);
    if (old != NULL && strncmp(old, dir, dlen) == 0 &&
        (old[dlen] == '\0' || old[dlen] == ':')) {
        free(dir);
        return;
    }
    n = dlen + 1 + (old != NULL ? strlen(old) : 0) + 1;
    if ((path = malloc(n)) == NULL) {
        free(dir);
        print_error("out of memory");
        exit(CLI_EXIT_FAIL);
    }
    if (old != NULL && old[0] != '\0') {
        snprintf(path, n, "%s:%s", dir, old);
    }
    else {
        snprintf(path, n, "%s", dir);
    }
    put_env("PYTHONPATH", path, verbose);
    free(path);
    free(dir);
}

static void
put_verbose(int verbose)
{
    char buf[16];
    if (verbose > 0) {
        snprintf(buf, sizeof(buf), "%d", verbose);
        put_env("PYCDSVERBOSE", buf, verbose);
    }
}

/* inv. 1: become the program.  Returns only on failure, with the status
 * a shell would give: 127 not found, 126 found but not runnable. */
static int
exec_command(char **command)
{
    /* parse_args() guarantees a command; handled for the analyser */
    assert(command != NULL && command[0] != NULL);
    if (command == NULL || command[0] == NULL) {
        return CLI_EXIT_USAGE;
    }
    execvp(command[0], command);
    int e = errno;
    print_error("%s: %s", command[0], strerror(e));
    return e == ENOENT ? 127 : 126;
}

/* ---------------------------------------------------------------------
 * The interpreter probe (trace; run -v) */

/* word resolved as execvp(3) resolves it: as given when it holds a '/',
 * else the first executable regular file of that name on PATH (the
 * system's default path when PATH is unset; an empty entry is the
 * current directory).  Returns a malloc'd path, or NULL when there is
 * none (exec_command() then reports it). */
static char *
find_program(const char *word)
{
    const char *path = getenv("PATH");
    char defpath[256];
    size_t wlen = strlen(word);

    if (strchr(word, '/') != NULL) {
        return strdup(word);
    }
    if (path == NULL) {
        size_t n = confstr(_CS_PATH, defpath, sizeof(defpath));
        path = n > 0 && n <= sizeof(defpath) ? defpath : "/bin:/usr/bin";
    }
    for (const char *p = path;;) {
        size_t dlen = strcspn(p, ":");
        char *cand = malloc(dlen + 1 + wlen + 1);

        if (cand == NULL) {
            return NULL;
        }
        if (dlen == 0) {
            memcpy(cand, word, wlen + 1);
        }
        else {
            snprintf(cand, dlen + 1 + wlen + 1, "%.*s/%s", (int)dlen, p,
                     word);
        }
        if (check_file(cand) && access(cand, X_OK) == 0) {
            return cand;
        }
        free(cand);
        if (p[dlen] == '\0') {
            return NULL;
        }
        p += dlen + 1;
    }
}

/* What the probe prints: a marker line (whatever else start-up writes to
 * stdout), then the version, sys.executable and "ok", "import WHY" or
 * "check WHY", each on one line.  It runs on Python 2 as well, so that
 * a python2 is named as such. */
static const char probe_code[] =
    "import sys\n"
    "try:\n"
    "    import _cds\n"
    "    r = getattr(_cds, 'check', lambda: None)()\n"
    "    r = 'ok' if r is None else 'check ' + r\n"
    "except ImportError as e:\n"
    "    r = 'import %s' % (e,)\n"
    "sys.stdout.write('pycds-probe\\n%s\\n%s\\n%s\\n' % "
    "(sys.version.split()[0], sys.executable or '', ' '.join(r.split())))\n";

enum probe_result {
    PROBE_OK,       /* _cds imports and check() returns None */
    PROBE_NOIMPORT, /* _cds cannot be imported (another SOABI) */
    PROBE_CHECK,    /* check() says why _cds cannot work there */
    PROBE_UNKNOWN,  /* the probe did not say: the program will */
};

struct probe {
    enum probe_result result;
    int status;             /* the probe's wait status */
    const char *version;    /* "3.12.1"; these point into out */
    const char *executable; /* sys.executable, or the path run */
    const char *detail;     /* the ImportError, or check()'s message */
    char out[8192];
};

/* Split the probe's output in p->out into its fields. */
static enum probe_result
load_probe(struct probe *p, const char *path)
{
    char *s = p->out, *f[3];

    while (strncmp(s, "pycds-probe\n", 12) != 0) {
        if ((s = strchr(s, '\n')) == NULL) {
            return PROBE_UNKNOWN;
        }
        s++;
    }
    s += 12;
    for (int i = 0; i < 3; i++) {
        char *nl = strchr(s, '\n');
        if (nl == NULL) {
            return PROBE_UNKNOWN;
        }
        *nl = '\0';
        f[i] = s;
        s = nl + 1;
    }
    p->version = f[0];
    p->executable = f[1][0] != '\0' ? f[1] : path;
    if (strcmp(f[2], "ok") == 0) {
        p->detail = "";
        return PROBE_OK;
    }
    if (strncmp(f[2], "import ", 7) == 0) {
        p->detail = f[2] + 7;
        return PROBE_NOIMPORT;
    }
    if (strncmp(f[2], "check ", 6) == 0) {
        p->detail = f[2] + 6;
        return PROBE_CHECK;
    }
    return PROBE_UNKNOWN;
}

/* Run the interpreter at path once, as the program will get it (the
 * activation already on PYTHONPATH) but with PYCDSMODE unset, so that
 * nothing is traced or served: it imports _cds and asks _cds.check().
 * argv0 is the COMMAND's first word, as the program's argv[0] (Python
 * derives sys.executable from it).  Fills p; p->result says what came
 * of it. */
static void
probe_python(struct probe *p, const char *path, const char *argv0,
             int verbose)
{
    int fds[2];
    size_t len = 0;
    pid_t pid;

    memset(p, 0, sizeof(*p));
    p->result = PROBE_UNKNOWN;
    p->status = -1;
    fflush(NULL);
    if (pipe(fds) != 0) {
        return;
    }
    /* the program's stdout is the dup2 copy alone */
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    if ((pid = fork()) < 0) {
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        char *argv[] = {(char *)(uintptr_t)argv0, "-c",
                        (char *)(uintptr_t)probe_code, NULL};
        int null = open("/dev/null", O_RDWR);

        unsetenv("PYCDSMODE");
        /* a path that is not UTF-8 still comes through */
        setenv("PYTHONIOENCODING", "utf-8:surrogateescape", 1);
        if (dup2(fds[1], STDOUT_FILENO) < 0) {
            _exit(126);
        }
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            if (verbose < 1) {
                dup2(null, STDERR_FILENO);
            }
        }
        execv(path, argv);
        _exit(127);
    }
    close(fds[1]);
    for (;;) {
        char drain[512];
        char *buf = len < sizeof(p->out) - 1 ? p->out + len : drain;
        size_t room = buf == drain ? sizeof(drain)
                                   : sizeof(p->out) - 1 - len;
        ssize_t got = read(fds[0], buf, room);

        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            break;
        }
        if (buf != drain) {
            len += (size_t)got;
        }
    }
    p->out[len] = '\0';
    close(fds[0]);
    while (waitpid(pid, &p->status, 0) < 0) {
        if (errno != EINTR) {
            p->status = -1;
            break;
        }
    }
    p->result = load_probe(p, path);
}

/* Is version ("3.12.1") a release of a minor version pycds can be built
 * for (PYCDS_SUPPORTED_MINORS: a heap layout exists for it)?  For any
 * other, rebuilding is no remedy. */
static bool
check_supported_minor(const char *version)
{
    char word[16];
    const char *list = PYCDS_SUPPORTED_MINORS;
    size_t n;

    if (strncmp(version, "3.", 2) != 0) {
        return false;
    }
    n = strspn(version + 2, "0123456789");
    if (n == 0 || n >= sizeof(word) || (version[2 + n] != '.' &&
                                        version[2 + n] != '\0')) {
        return false;
    }
    memcpy(word, version + 2, n);
    word[n] = '\0';
    while (*list != '\0') {
        size_t w = strcspn(list, " ;");
        if (w == n && strncmp(list, word, n) == 0) {
            return true;
        }
        list += w;
        list += strspn(list, " ;");
    }
    return false;
}

/* The one line saying why pycds cannot work in the probed interpreter
 * and what to do: "pycds: CMD: PATH is Python V (EXE), but pycds was
 * built for Python B (PYCDS_DEFAULT_PYTHON) and cannot ...: REMEDY".
 * Where the versions differ they are the reason; where they are the
 * same, check()'s message says why and what to do. */
static void
print_probe_problem(const struct command *cmd, const char *path,
                    const struct probe *p, const char *tail)
{
    bool same = strcmp(p->version, PYCDS_DEFAULT_PYTHON_VERSION) == 0;

    fprintf(stderr, "pycds: %s: %s is Python %s", cmd->name, path,
            p->version);
    if (strcmp(p->executable, path) != 0) {
        fprintf(stderr, " (%s)", p->executable);
    }
    fprintf(stderr,
            ", but pycds was built for Python " PYCDS_DEFAULT_PYTHON_VERSION
            " (" PYCDS_DEFAULT_PYTHON ") and cannot ");
    if (p->result == PROBE_NOIMPORT) {
        fprintf(stderr, "load there%s%s%s", p->detail[0] ? " (" : "",
                p->detail, p->detail[0] ? ")" : "");
    }
    else {
        fprintf(stderr, "work there");
    }
    if (!check_supported_minor(p->version)) {
        fprintf(stderr,
                ": pycds builds for Python " PYCDS_SUPPORTED_TEXT
                " only: use " PYCDS_DEFAULT_PYTHON ", or one of those "
                "after rebuilding pycds for it (cmake -DPYCDS_PYTHON=PATH)"
                "%s\n",
                tail);
    }
    else if (p->result == PROBE_CHECK && same) {
        fprintf(stderr, ": %s%s\n", p->detail, tail);
    }
    else {
        fprintf(stderr, ": rebuild pycds for it (cmake -DPYCDS_PYTHON=%s)%s\n",
                p->executable, tail);
    }
}

/* Trace (fatal) and run -v: when COMMAND starts a Python interpreter,
 * probe it once (one interpreter start) and say if pycds cannot work
 * there.  Returns CLI_EXIT_FAIL after the message when fatal, else 0. */
static int
check_interpreter(const struct command *cmd, char **command, int verbose,
                  bool fatal)
{
    struct probe p;
    char *path;

    if (!check_python_name(command[0]) ||
        (path = find_program(command[0])) == NULL) {
        return 0;
    }
    probe_python(&p, path, command[0], verbose);
    switch (p.result) {
    case PROBE_OK:
        if (verbose >= 1) {
            fprintf(stderr, "pycds: %s: %s is Python %s: pycds works there\n",
                    cmd->name, path, p.version);
        }
        break;
    case PROBE_UNKNOWN:
        if (verbose >= 1) {
            fprintf(stderr,
                    "pycds: %s: could not ask %s whether pycds works there "
                    "(%s %d); running it anyway\n",
                    cmd->name, path,
                    p.status != -1 && WIFSIGNALED(p.status) ? "signal"
                                                            : "exit",
                    p.status == -1           ? -1
                    : WIFSIGNALED(p.status) ? WTERMSIG(p.status)
                                             : WEXITSTATUS(p.status));
        }
        break;
    case PROBE_NOIMPORT:
    case PROBE_CHECK:
        print_probe_problem(cmd, path, &p,
                            fatal ? "" : "; it runs without pycds");
        free(path);
        return fatal ? CLI_EXIT_FAIL : 0;
    }
    free(path);
    return 0;
}

/* ---------------------------------------------------------------------
 * Arguments */

/* The value of an option that takes one: "--name=V", "-oV", or the next
 * argument.  NULL (after a usage message) when there is none. */
static const char *
take_option_value(const struct command *cmd, const char *opt, char **argv,
                  int argc, int *i)
{
    const char *a = argv[*i];
    size_t n = strlen(opt);

    if (a[n] == '=' && opt[1] == '-') {
        return a + n + 1;
    }
    if (a[n] != '\0' && opt[1] != '-') {
        return a + n;
    }
    if (a[n] != '\0' || *i + 1 >= argc) {
        print_usage_error(cmd, "option %s needs a value", opt);
        return NULL;
    }
    return argv[++*i];
}

/* Does argument a name option opt, alone or as opt=value (long) or
 * optVALUE (short)? */
static bool
check_option(const char *a, const char *opt)
{
    size_t n = strlen(opt);
    if (strncmp(a, opt, n) != 0) {
        return false;
    }
    if (opt[1] == '-') {
        return a[n] == '\0' || a[n] == '=';
    }
    return true;
}

/* dump's repeatable --package, --path, --include, --exclude: where a
 * value of option a goes. */
struct select {
    const char *name;
    const char **to;
    int *n;
};

static bool
select_slot(struct opts *o, const char *a, struct select *sel)
{
    const struct select t[] = {
        {"--package", o->packages, &o->npackages},
        {"--path", o->paths, &o->npaths},
        {"--include", o->include, &o->ninclude},
        {"--exclude", o->exclude, &o->nexclude},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (check_option(a, t[i].name)) {
            *sel = t[i];
            return true;
        }
    }
    return false;
}

/* Parse argv (argv[0] is the command name) into o.  Returns -1 after
 * printing help (exit 0), CLI_EXIT_USAGE after a usage message, or 0. */
static int
parse_args(const struct command *cmd, int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof(*o));
    o->modules = true;
    o->config = global_config;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        unsigned allow = cmd->options;
        struct select sel;

        if (strcmp(a, "--") == 0) {
            if (!(allow & OPT_COMMAND)) {
                return USAGE_ERROR(cmd, "unexpected '--'");
            }
            o->command = argv + i + 1;
            break;
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (o->npositional >= cmd->npositional ||
                o->npositional >= (int)(sizeof(o->positional) /
                                        sizeof(o->positional[0]))) {
                return USAGE_ERROR(cmd, "unexpected argument '%s'%s", a,
                                   (allow & OPT_COMMAND)
                                       ? " (put the command after --)"
                                       : "");
            }
            o->positional[o->npositional++] = a;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            print_usage(stdout, cmd);
            printf("\n%s", cmd->help);
            return -1;
        }
        if ((allow & OPT_OUTPUT) &&
            (check_option(a, "-o") || check_option(a, "--output"))) {
            const char *name = a[1] == '-' ? "--output" : "-o";
            if ((o->output = take_option_value(cmd, name, argv, argc, &i)) ==
                NULL) {
                return CLI_EXIT_USAGE;
            }
        }
        else if ((allow & OPT_PYTHON) && check_option(a, "--python")) {
            if ((o->python = take_option_value(cmd, "--python", argv, argc,
                                               &i)) == NULL) {
                return CLI_EXIT_USAGE;
            }
        }
        else if (check_option(a, "--config")) {
            if ((o->config = take_option_value(cmd, "--config", argv, argc,
                                               &i)) == NULL) {
                return CLI_EXIT_USAGE;
            }
        }
        else if ((allow & OPT_VERBOSE) && strcmp(a, "--verbose") == 0) {
            o->verbose++;
        }
        else if ((allow & OPT_VERBOSE) && a[1] == 'v' &&
                 strspn(a + 1, "v") == strlen(a + 1)) {
            o->verbose += (int)strlen(a + 1);
        }
        else if ((allow & OPT_RELOCATE) && strcmp(a, "--relocate") == 0) {
            o->relocate = true;
        }
        else if ((allow & OPT_MODULES) && strcmp(a, "--modules") == 0) {
            o->modules = true;
        }
        else if ((allow & OPT_MODULES) && strcmp(a, "--no-modules") == 0) {
            o->modules = false;
        }
        else if ((allow & OPT_JSON) && strcmp(a, "--json") == 0) {
            o->json = true;
        }
        else if ((allow & OPT_AUTO) && strcmp(a, "--auto") == 0) {
            o->autodump = true;
        }
        else if ((allow & OPT_SELECT) && select_slot(o, a, &sel)) {
            const char *v = take_option_value(cmd, sel.name, argv, argc, &i);
            if (v == NULL) {
                return CLI_EXIT_USAGE;
            }
            if (*sel.n == MAX_SELECT || v[0] == '\0' ||
                strchr(v, ':') != NULL) {
                return USAGE_ERROR(cmd, "%s '%s': %s", sel.name, v,
                                   *sel.n == MAX_SELECT
                                       ? "given too often"
                                       : "empty, or with a ':'");
            }
            sel.to[(*sel.n)++] = v;
        }
        else {
            return USAGE_ERROR(cmd, "unknown option '%s'", a);
        }
    }
    if ((cmd->options & OPT_COMMAND) &&
        (o->command == NULL || o->command[0] == NULL)) {
        return USAGE_ERROR(cmd, "missing COMMAND after --");
    }
    /* the hook has levels 1 and 2 (PYCDSVERBOSE): more v's mean all */
    if (o->verbose > VERBOSE_MAX) {
        o->verbose = VERBOSE_MAX;
    }
    return 0;
}

/* Read --config FILE, or ./pycds.yaml if there is one.  Returns 0 or an
 * exit status after a message. */
static int
read_config(const struct command *cmd, const struct opts *o,
            struct cli_config *c)
{
    char msg[512];
    const char *path = o->config;

    memset(c, 0, sizeof(*c));
    if (path == NULL) {
        if (!check_file(CONFIG_DEFAULT)) {
            return 0;
        }
        path = CONFIG_DEFAULT;
    }
    if (cli_config_read(c, path, msg, sizeof(msg)) < 0) {
        cli_config_clear(c);
        fprintf(stderr, "pycds: %s: %s\n", cmd->name, msg);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* The operand, else the config's value, made absolute; or a usage error
 * naming what is missing.  *out is malloc'd. */
static int
resolve_path(const struct command *cmd, const char *given,
             const char *configured, const char *what, char **out)
{
    const char *p = given != NULL ? given : configured;

    *out = NULL;
    if (p == NULL) {
        return USAGE_ERROR(cmd, "missing %s", what);
    }
    if (p[0] == '\0') {
        return USAGE_ERROR(cmd, "empty %s", what);
    }
    if ((*out = make_absolute(p)) == NULL) {
        return FAIL("%s: %s", p, strerror(errno != 0 ? errno : ENOMEM));
    }
    return 0;
}

/* ---------------------------------------------------------------------
 * trace */

static int
run_trace(const struct command *cmd, int argc, char **argv)
{
    struct opts o;
    struct cli_config cfg;
    char *list = NULL;
    int rc, fd;

    if ((rc = parse_args(cmd, argc, argv, &o)) != 0) {
        return rc < 0 ? CLI_EXIT_OK : rc;
    }
    if ((rc = read_config(cmd, &o, &cfg)) != 0) {
        return rc;
    }
    rc = resolve_path(cmd, o.output, cfg.list, "-o LIST", &list);
    cli_config_clear(&cfg);
    if (rc != 0) {
        return rc;
    }
    put_env("PYCDSMODE", "TRACE", o.verbose);
    put_env("PYCDSLIST", list, o.verbose);
    put_verbose(o.verbose);
    activate(cmd, o.command, o.verbose);
    /* an interpreter pycds cannot work in would trace nothing, with one
     * warning lost in the program's output, and exit 0 (issue 6) */
    if ((rc = check_interpreter(cmd, o.command, o.verbose, true)) != 0) {
        free(list);
        return rc;
    }
    /* the hook appends to the list (O_APPEND): create it now so that a
     * bad path is reported here, not as a warning from inside the
     * program, and so that a program that imports nothing leaves an
     * empty list rather than none */
    fd = open(list, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        rc = FAIL("%s: cannot open: %s", list, strerror(errno));
        free(list);
        return rc;
    }
    close(fd);
    free(list);
    return exec_command(o.command);
}

/* ---------------------------------------------------------------------
 * dump */

/* Write the names of list that pass include and exclude to a temporary
 * file; *tmp is its malloc'd path.  Lines are read as the hook reads them
 * (cds/modlist.c, as read_list in importhook/dump.c does): '#' starts a
 * comment, blanks are ignored, and a line with a NUL byte or a name that
 * is not UTF-8 is reported and skipped.  The hook would report such a line
 * with PYCDSLIST and its line number there, which would be the temporary
 * file's: so the skip is made here, in the hook's words, with the user's
 * list and line number, and the hook only sees names it accepts.  (Blank
 * lines in place of the dropped ones would keep the numbers, but the file
 * the hook names is still PYCDSLIST.)  The hook's summary does not count
 * these lines; the -v summary here does. */
static int
filter_list(const char *list, const struct cli_config *cfg, int verbose,
            char **tmp)
{
    const char *dir = getenv("TMPDIR");
    FILE *in = NULL, *out = NULL;
    char *line = NULL;
    size_t cap = 0, nin = 0, nout = 0, nskipped = 0;
    unsigned long lineno = 0;
    int fd = -1, rc = CLI_EXIT_FAIL;
    ssize_t got;
    size_t n;

    n = strlen(dir != NULL && dir[0] != '\0' ? dir : "/tmp") + 32;
    if ((*tmp = malloc(n)) == NULL) {
        return FAIL("out of memory");
    }
    snprintf(*tmp, n, "%s/pycds-list.XXXXXX",
             dir != NULL && dir[0] != '\0' ? dir : "/tmp");
    if ((in = fopen(list, "r")) == NULL) {
        print_error("%s: cannot open: %s", list, strerror(errno));
        free(*tmp);
        *tmp = NULL;
        goto out;
    }
    if ((fd = mkstemp(*tmp)) < 0 || (out = fdopen(fd, "w")) == NULL) {
        print_error("%s: cannot create: %s", *tmp, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(*tmp);
        }
        free(*tmp);
        *tmp = NULL;
        goto out;
    }
    while ((got = getline(&line, &cap, in)) >= 0) {
        const char *name;
        size_t len;
        bool keep;

        lineno++;
        enum cds_list_line kind = cds_list_line_parse(line, (size_t)got,
                                                      &name, &len);
        if (kind == CDS_LIST_NUL) {
            print_error("dump: %s:%lu: skipping a line with a NUL byte", list,
                        lineno);
            nskipped++;
            continue;
        }
        if (kind == CDS_LIST_BLANK) {
            continue;
        }
        if (kind == CDS_LIST_RAN) {
            /* what ran in the trace, for the dump's layout: kept */
            fprintf(out, "@ %.*s\n", (int)len, name);
            continue;
        }
        if (kind == CDS_LIST_INTERNED) {
            /* strings the trace saw interned, for the pool: kept */
            fprintf(out, "$ %.*s\n", (int)len, name);
            continue;
        }
        /* a name is followed by a blank, a '#' or the end: make it a
         * string in place */
        char *p = line + (name - line);
        p[len] = '\0';
        if (!cli_utf8_check(p, len)) {
            print_error("dump: %s:%lu: skipping a name that is not UTF-8",
                        list, lineno);
            nskipped++;
            continue;
        }
        nin++;
        keep = cfg->ninclude == 0;
        for (size_t i = 0; !keep && i < cfg->ninclude; i++) {
            keep = fnmatch(cfg->include[i], p, 0) == 0;
        }
        for (size_t i = 0; keep && i < cfg->nexclude; i++) {
            keep = fnmatch(cfg->exclude[i], p, 0) != 0;
        }
        if (keep) {
            fprintf(out, "%s\n", p);
            nout++;
        }
        else if (verbose >= 2) {
            fprintf(stderr, "pycds: dump: leaving out %s\n", p);
        }
    }
    if (ferror(in)) {
        print_error("%s: cannot read: %s", list, strerror(errno));
        goto out;
    }
    if (fflush(out) != 0 || ferror(out)) {
        print_error("%s: cannot write: %s", *tmp, strerror(errno));
        goto out;
    }
    if (verbose >= 1) {
        fprintf(stderr,
                "pycds: dump: %zu of %zu names after include/exclude of %s "
                "(%zu lines skipped)\n",
                nout, nin, cfg->path, nskipped);
    }
    rc = 0;
out:
    free(line);
    if (in != NULL) {
        fclose(in);
    }
    if (out != NULL && fclose(out) != 0 && rc == 0) {
        rc = FAIL("%s: cannot write: %s", *tmp, strerror(errno));
    }
    if (rc != 0 && *tmp != NULL) {
        unlink(*tmp);
        free(*tmp);
        *tmp = NULL;
    }
    return rc;
}

/* Did the file at path change since before (st_ino 0: it did not exist)?
 * The writer renames a new file into place, so its inode changes. */
static bool
check_written(const char *path, const struct stat *before)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        return false;
    }
    return before->st_ino == 0 || st.st_ino != before->st_ino ||
           st.st_dev != before->st_dev ||
           st.st_mtim.tv_sec != before->st_mtim.tv_sec ||
           st.st_mtim.tv_nsec != before->st_mtim.tv_nsec;
}

/* Run python with stdin from /dev/null and wait for it.  Returns its
 * exit status (inv. 1). */
static int
spawn_python(const char *python)
{
    struct sigaction ign = {.sa_handler = SIG_IGN}, oldint, oldquit;
    int status;
    pid_t pid;

    /* as system(3): ^C reaches the interpreter, which decides; we wait
     * for it so that the temporary list is removed either way */
    sigemptyset(&ign.sa_mask);
    sigaction(SIGINT, &ign, &oldint);
    sigaction(SIGQUIT, &ign, &oldquit);
    pid = fork();
    if (pid < 0) {
        sigaction(SIGINT, &oldint, NULL);
        sigaction(SIGQUIT, &oldquit, NULL);
        return FAIL("cannot start %s: %s", python, strerror(errno));
    }
    if (pid == 0) {
        char *argv[] = {(char *)(uintptr_t)python, NULL};
        int fd = open("/dev/null", O_RDONLY);
        sigaction(SIGINT, &oldint, NULL);
        sigaction(SIGQUIT, &oldquit, NULL);
        if (fd < 0 || dup2(fd, STDIN_FILENO) < 0) {
            print_error("cannot open /dev/null: %s", strerror(errno));
            _exit(126);
        }
        if (fd != STDIN_FILENO) {
            close(fd);
        }
        _exit(exec_command(argv));
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            status = -1;
            break;
        }
    }
    sigaction(SIGINT, &oldint, NULL);
    sigaction(SIGQUIT, &oldquit, NULL);
    if (status == -1) {
        return FAIL("cannot wait for %s: %s", python, strerror(errno));
    }
    if (WIFSIGNALED(status)) {
        print_error("dump: %s killed by signal %d", python, WTERMSIG(status));
        return 128 + WTERMSIG(status);
    }
    return WEXITSTATUS(status);
}

/* The ':'-joined values, or NULL for none; malloc'd. */
static char *
join_values(const char *const *v, size_t n, const char *const *more,
            size_t nmore)
{
    size_t len = 1;
    char *out;

    for (size_t i = 0; i < n + nmore; i++) {
        len += strlen(i < n ? v[i] : more[i - n]) + 1;
    }
    if (n + nmore == 0 || (out = malloc(len)) == NULL) {
        return NULL;
    }
    out[0] = '\0';
    for (size_t i = 0; i < n + nmore; i++) {
        if (i > 0) {
            strcat(out, ":");
        }
        strcat(out, i < n ? v[i] : more[i - n]);
    }
    return out;
}

/* dump's selection for the DUMP interpreter (docs/usage.md, `pycds
 * dump`): PYCDSPACKAGES, PYCDSPATHS (absolute), PYCDSINCLUDE and
 * PYCDSEXCLUDE, the command line's patterns with pycds.yaml's. */
static int
put_selection(const struct opts *o, const struct cli_config *cfg)
{
    const char *abs[MAX_SELECT];
    char *made[MAX_SELECT] = {NULL};
    char *v;
    int rc = 0;

    for (int i = 0; i < o->npaths; i++) {
        if ((made[i] = realpath(o->paths[i], NULL)) == NULL) {
            rc = FAIL("--path %s: %s", o->paths[i], strerror(errno));
            goto out;
        }
        abs[i] = made[i];
    }
    static const char *const names[] = {"PYCDSPACKAGES", "PYCDSPATHS",
                                        "PYCDSINCLUDE", "PYCDSEXCLUDE"};
    for (int k = 0; k < 4; k++) {
        v = k == 0   ? join_values(o->packages, (size_t)o->npackages, NULL, 0)
            : k == 1 ? join_values(abs, (size_t)o->npaths, NULL, 0)
            : k == 2 ? join_values(o->include, (size_t)o->ninclude,
                                   (const char *const *)cfg->include,
                                   cfg->ninclude)
                     : join_values(o->exclude, (size_t)o->nexclude,
                                   (const char *const *)cfg->exclude,
                                   cfg->nexclude);
        if (v != NULL) {
            put_env(names[k], v, o->verbose);
            free(v);
        }
        else {
            unsetenv(names[k]);
        }
    }
out:
    for (int i = 0; i < o->npaths; i++) {
        free(made[i]);
    }
    return rc;
}

static int
run_dump(const struct command *cmd, int argc, char **argv)
{
    struct opts o;
    struct cli_config cfg;
    struct stat before = {0};
    char *list = NULL, *archive = NULL, *tmp = NULL;
    const char *python;
    int rc;

    if ((rc = parse_args(cmd, argc, argv, &o)) != 0) {
        return rc < 0 ? CLI_EXIT_OK : rc;
    }
    if ((rc = read_config(cmd, &o, &cfg)) != 0) {
        return rc;
    }
    /* --package and --path need no LIST; one given is read as well */
    bool selected = o.npackages > 0 || o.npaths > 0;
    if (((!selected || o.npositional > 0) &&
         (rc = resolve_path(cmd, o.npositional ? o.positional[0] : NULL,
                            cfg.list, "LIST", &list)) != 0) ||
        (rc = resolve_path(cmd, o.output, cfg.archive, "-o ARCHIVE",
                           &archive)) != 0 ||
        (rc = put_selection(&o, &cfg)) != 0) {
        goto out;
    }
    python = o.python != NULL   ? o.python
             : cfg.python != NULL ? cfg.python
                                  : PYCDS_DEFAULT_PYTHON;
    if (list == NULL) {
        /* PYCDSLIST unset: the selection alone */
    }
    else if (cfg.ninclude != 0 || cfg.nexclude != 0) {
        if ((rc = filter_list(list, &cfg, o.verbose, &tmp)) != 0) {
            goto out;
        }
    }
    else if (access(list, R_OK) != 0) {
        rc = FAIL("%s: cannot open: %s", list, strerror(errno));
        goto out;
    }
    if (stat(archive, &before) != 0) {
        memset(&before, 0, sizeof(before));
    }
    put_env("PYCDSMODE", "DUMP", o.verbose);
    if (list != NULL) {
        put_env("PYCDSLIST", tmp != NULL ? tmp : list, o.verbose);
    }
    else {
        unsetenv("PYCDSLIST");
    }
    put_env("PYCDSARCHIVE", archive, o.verbose);
    put_verbose(o.verbose);
    activate(cmd, NULL, o.verbose);
    fflush(NULL);
    rc = spawn_python(python);
    if (rc == 0 && !check_written(archive, &before)) {
        /* the interpreter ran but nothing dumped: no _cds for it (one
         * that loads but cannot work there says so itself, exit 1) */
        rc = FAIL("dump: %s exited 0 but did not write %s: pycds is not "
                  "available to it (pycds was built for Python "
                  PYCDS_DEFAULT_PYTHON_VERSION ", " PYCDS_DEFAULT_PYTHON ")",
                  python, archive);
    }
out:
    if (tmp != NULL) {
        unlink(tmp);
    }
    free(tmp);
    free(list);
    free(archive);
    cli_config_clear(&cfg);
    return rc;
}

/* ---------------------------------------------------------------------
 * run */

static int
run_run(const struct command *cmd, int argc, char **argv)
{
    struct opts o;
    struct cli_config cfg;
    char *archive = NULL;
    int rc;

    if ((rc = parse_args(cmd, argc, argv, &o)) != 0) {
        return rc < 0 ? CLI_EXIT_OK : rc;
    }
    if ((rc = read_config(cmd, &o, &cfg)) != 0) {
        return rc;
    }
    rc = resolve_path(cmd, o.npositional ? o.positional[0] : NULL,
                      cfg.archive, "ARCHIVE", &archive);
    cli_config_clear(&cfg);
    if (rc != 0) {
        return rc;
    }
    /* a missing or bad archive is not an error here: the hook warns once
     * and the program runs without it (the archive is a cache) */
    put_env("PYCDSMODE", o.autodump ? "AUTO" : "SHARE", o.verbose);
    if (strcmp(cmd->name, "stats") == 0) {
        put_env("PYCDSSTATS", "1", o.verbose);
    }
    put_env("PYCDSARCHIVE", archive, o.verbose);
    if (o.relocate) {
        put_env("PYCDSRELOCATE", "1", o.verbose);
    }
    put_verbose(o.verbose);
    activate(cmd, o.command, o.verbose);
    free(archive);
    /* never a failure here: SHARE steps aside; -v may say why first */
    if (o.verbose >= 1) {
        check_interpreter(cmd, o.command, o.verbose, false);
    }
    return exec_command(o.command);
}

/* ---------------------------------------------------------------------
 * inspect, verify */

/* The ARCHIVE operand or the config's.  *out is malloc'd. */
static int
resolve_archive(const struct command *cmd, const struct opts *o, char **out)
{
    struct cli_config cfg;
    int rc;

    *out = NULL;
    if ((rc = read_config(cmd, o, &cfg)) != 0) {
        return rc;
    }
    if (o->npositional > 0) {
        *out = strdup(o->positional[0]);
    }
    else if (cfg.archive != NULL) {
        *out = strdup(cfg.archive);
    }
    else {
        cli_config_clear(&cfg);
        return USAGE_ERROR(cmd, "missing ARCHIVE");
    }
    cli_config_clear(&cfg);
    return *out == NULL ? FAIL("out of memory") : 0;
}

static int
run_inspect(const struct command *cmd, int argc, char **argv)
{
    struct opts o;
    char *archive;
    int rc;

    if ((rc = parse_args(cmd, argc, argv, &o)) != 0) {
        return rc < 0 ? CLI_EXIT_OK : rc;
    }
    if ((rc = resolve_archive(cmd, &o, &archive)) != 0) {
        return rc;
    }
    struct cli_inspect_options opt = {.modules = o.modules,
                                      .json = o.json};
    rc = cli_inspect_write(archive, &opt);
    free(archive);
    return rc;
}

/* The shared string pool (format.md 4.1): every table entry and every
 * block a string lies in, against the block checksums (P1..P3), and the
 * early list's blocks and indices.  The loader checks blocks on first
 * use; verify uses every string. */
static int
validate_pool(const cds_archive *a, cds_error *err)
{
    const struct cds_disk_header *h = a->header;
    uint32_t off, extent;
    uint8_t *block_ok;
    int rc = 0;

    if (h->pool_count == 0) {
        return 0;
    }
    block_ok = calloc(cds_pool_nblocks(a), 1); /* H11 bounds nblocks */
    if (block_ok == NULL) {
        return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
    }
    for (uint32_t i = 0; rc == 0 && i < h->pool_count; i++) {
        rc = cds_pool_find(a, i, block_ok, &off, &extent, err);
    }
    /* the early list: its blocks, then each index (P1) */
    const uint32_t *early = NULL;
    if (rc == 0) {
        rc = cds_pool_early(a, block_ok, &early, err);
    }
    for (uint32_t i = 0; rc == 0 && i < h->pool_early_count; i++) {
        uint32_t ix;
        memcpy(&ix, early + i, 4);
        rc = cds_pool_find(a, ix, block_ok, &off, &extent, err);
    }
    free(block_ok);
    return rc;
}

static int
run_verify(const struct command *cmd, int argc, char **argv)
{
    struct opts o;
    cds_archive a;
    cds_error err;
    char *archive;
    int rc;

    if ((rc = parse_args(cmd, argc, argv, &o)) != 0) {
        return rc < 0 ? CLI_EXIT_OK : rc;
    }
    if ((rc = resolve_archive(cmd, &o, &archive)) != 0) {
        return rc;
    }
    /* the header and index (H1..H11, I1..I8), the string pool (P1..P3),
     * then every segment (S1..S7): the format layer's checks.  What needs
     * the interpreter is left to the loader: the fingerprint and
     * optimization level, the object bodies (format.md 6.7) and the str
     * image of each pool string; so is the trust check on the file. */
    rc = cds_archive_open(&a, archive, 0, NULL, &err);
    if (rc == 0) {
        rc = validate_pool(&a, &err);
        if (rc == 0 && o.verbose >= 1) {
            printf("ok: string pool of %u strings\n", a.header->pool_count);
        }
    }
    for (uint32_t i = 0; rc == 0 && i < a.header->nmodules; i++) {
        rc = cds_segment_validate(&a, i, &err);
        if (rc == 0 && o.verbose >= 1) {
            printf("ok: %s\n", cds_module_name(&a, i));
        }
    }
    if (rc < 0) {
        cli_archive_error_write(archive, err.message, rc);
        cds_archive_close(&a);
        free(archive);
        return CLI_EXIT_FAIL;
    }
    printf("ok: %u modules, %zu bytes\n", a.header->nmodules, a.size);
    cds_archive_close(&a);
    free(archive);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

/* ---------------------------------------------------------------------
 * help */

static int run_help(const struct command *cmd, int argc, char **argv);

static const struct command commands[] = {
    {"trace", run_trace, OPT_OUTPUT | OPT_VERBOSE | OPT_COMMAND, 0,
     "trace -o LIST [-v|-vv] -- COMMAND [ARGS...]",
     "Run COMMAND with PYCDSMODE=TRACE: every module it imports from a .py\n"
     "file is appended to LIST, one name a line, in first-import order.\n"
     "LIST is created if needed and appended to, never truncated, so that\n"
     "several runs add up; remove it to start afresh.  A COMMAND named\n"
     "python* is first asked whether pycds works in it; if not, trace says\n"
     "why and exits 1 without running it.\n"
     "\n"
     "  -o, --output LIST  the module list (default: 'list' in pycds.yaml)\n"
     "  -v, -vv            show what is set; -vv also each traced module\n"},
    {"dump", run_dump, OPT_OUTPUT | OPT_VERBOSE | OPT_PYTHON | OPT_SELECT, 1,
     "dump [LIST] [--package NAME]... [--path DIR]... -o ARCHIVE "
     "[--include PAT]... [--exclude PAT]... [--python PY] [-v|-vv]",
     "Run PY with PYCDSMODE=DUMP and no script, stdin from /dev/null: it\n"
     "compiles the modules named in LIST and writes ARCHIVE (to a\n"
     "temporary file renamed into place).  Exits with PY's status.\n"
     "include/exclude patterns in pycds.yaml filter LIST first.\n"
     "\n"
     "  --package NAME  also every source module of package NAME as PY\n"
     "                  finds it, but tests and benchmarks below it\n"
     "                  (test, tests, testing, conftest, benchmarks, bench)\n"
     "  --path DIR      also every source module of the sys.path entry\n"
     "                  DIR, the same way (DIR goes first on PY's sys.path;\n"
     "                  the program must have it on its own)\n"
     "  --include PAT   keep only names matching a PAT (fnmatch), and\n"
     "  --exclude PAT   drop those matching one: with pycds.yaml's\n"
     "\n"
     "  -o, --output ARCHIVE  the archive to write (default: 'archive' in\n"
     "                        pycds.yaml)\n"
     "  --python PY           interpreter (default: 'python' in pycds.yaml,\n"
     "                        else " PYCDS_DEFAULT_PYTHON ")\n"
     "  -v, -vv               show what is set and each module dumped\n"},
    {"run", run_run, OPT_VERBOSE | OPT_RELOCATE | OPT_COMMAND | OPT_AUTO, 1,
     "run ARCHIVE [--auto] [--relocate] [-v|-vv] -- COMMAND [ARGS...]",
     "Run COMMAND with PYCDSMODE=SHARE: Python imports the modules that\n"
     "ARCHIVE holds from it.  COMMAND replaces pycds (exec): its exit\n"
     "status and signals are its own.  A missing, stale or bad archive\n"
     "costs one warning and the program runs as without pycds.\n"
     "\n"
     "  --auto      PYCDSMODE=AUTO: serve from ARCHIVE if it is valid, else\n"
     "              trace; when COMMAND exits 0 after tracing, or after\n"
     "              finding archived modules stale, (re)write ARCHIVE in\n"
     "              the background\n"
     "  --relocate  never map at the archive's preferred address (testing)\n"
     "  -v, -vv     PYCDSVERBOSE=1 or 2: where each import came from; also\n"
     "              whether pycds works in a python* COMMAND\n"},
    {"stats", run_run, OPT_VERBOSE | OPT_COMMAND | OPT_AUTO, 1,
     "stats ARCHIVE [--auto] [-v|-vv] -- COMMAND [ARGS...]",
     "As run, and when COMMAND's Python exits it prints a summary on\n"
     "stderr: the archive and how it was mapped, modules served, not in\n"
     "the archive, stale and failed, the time spent loading and in\n"
     "find_spec, and the archive's pages resident, still the file's\n"
     "(shared with every process that maps it) and copied.  -v adds a line\n"
     "per import with its reason (PYCDSVERBOSE=1).\n"
     "\n"
     "  --auto   PYCDSMODE=AUTO, as run --auto\n"
     "  -v, -vv  as run\n"},
    {"inspect", run_inspect, OPT_MODULES | OPT_JSON, 1,
     "inspect ARCHIVE [--json] [--no-modules]",
     "Describe ARCHIVE as YAML (or JSON) on stdout: header, build\n"
     "fingerprint, totals (objects by kind, relocations, sizes) and one\n"
     "entry per module.  Segments are not checked; use verify for that.\n"
     "Exits 0, or 1 when ARCHIVE cannot be read as an archive.\n"
     "\n"
     "  --json        one JSON object instead of YAML, the same keys\n"
     "  --no-modules  leave out the per-module list (--modules: keep it)\n"},
    {"verify", run_verify, OPT_VERBOSE, 1, "verify ARCHIVE [-v]",
     "Check ARCHIVE completely without running Python: header, index,\n"
     "string pool, checksums and every module's segment.  Prints 'ok: N\n"
     "modules, M bytes' and exits 0, or names the first problem and exits\n"
     "1 (a usage error exits 2).  The build fingerprint is not compared:\n"
     "an interpreter does that at load.\n"
     "\n"
     "  -v  also print the pool and each module as they pass\n"},
    {"help", run_help, 0, 1, "help [COMMAND]",
     "Show the help of pycds or of one command.\n"},
    {NULL, NULL, 0, 0, NULL, NULL},
};

static const struct command *
find_command(const char *name)
{
    for (const struct command *c = commands; c->name != NULL; c++) {
        if (strcmp(c->name, name) == 0) {
            return c;
        }
    }
    return NULL;
}

static void
print_usage(FILE *f, const struct command *cmd)
{
    fprintf(f, "usage: pycds %s\n", cmd->usage);
}

static void
print_help(FILE *f)
{
    fprintf(f,
            "usage: pycds [--config FILE] COMMAND [ARGS...]\n"
            "\n"
            "Start CPython faster by serving code objects from a "
            "memory-mapped archive.\n"
            "\n"
            "Commands:\n");
    for (const struct command *c = commands; c->name != NULL; c++) {
        fprintf(f, "  pycds %s\n", c->usage);
    }
    fprintf(f,
            "\n"
            "Typical use:\n"
            "  pycds trace -o heap.lst -- python3.11 app.py\n"
            "  pycds dump heap.lst -o heap.img\n"
            "  pycds run heap.img -- python3.11 app.py\n"
            "\n"
            "Options for every command:\n"
            "  --config FILE  settings (archive, list, python, include, "
            "exclude);\n"
            "                 default ./" CONFIG_DEFAULT " if present\n"
            "  -h, --help     help of the command\n"
            "\n"
            "  pycds --version | --help | help COMMAND\n"
            "\n"
            "Environment (what trace, dump and run set): PYCDSMODE, "
            "PYCDSLIST,\n"
            "PYCDSARCHIVE, PYCDSRELOCATE, PYCDSVERBOSE; see docs/usage.md.\n");
}

static int
run_help(const struct command *cmd, int argc, char **argv)
{
    const struct command *about;
    struct opts o;
    int rc;

    if ((rc = parse_args(cmd, argc, argv, &o)) != 0) {
        return rc < 0 ? CLI_EXIT_OK : rc;
    }
    if (o.npositional == 0) {
        print_help(stdout);
        return CLI_EXIT_OK;
    }
    if ((about = find_command(o.positional[0])) == NULL) {
        return USAGE_ERROR(cmd, "unknown command '%s'", o.positional[0]);
    }
    print_usage(stdout, about);
    printf("\n%s", about->help);
    return CLI_EXIT_OK;
}

int
main(int argc, char **argv)
{
    const struct command *cmd;
    int i = 1;

    /* options before the command name */
    while (i < argc && argv[i][0] == '-') {
        const char *a = argv[i];
        bool help = strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0;
        bool version = strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0;

        if ((help || version) && i + 1 < argc) {
            /* inv. 3: not ignored ('pycds --help trace' would be help
             * trace, 'pycds --version x' a typo) */
            return USAGE_ERROR(NULL, "unexpected argument '%s' after %s",
                               argv[i + 1], a);
        }
        if (help) {
            print_help(stdout);
            return CLI_EXIT_OK;
        }
        if (version) {
            printf("pycds %s (archive format %u)\n", PYCDS_VERSION,
                   CDS_FORMAT_VERSION);
            return CLI_EXIT_OK;
        }
        if (check_option(a, "--config")) {
            if ((global_config = take_option_value(NULL, "--config", argv,
                                                   argc, &i)) == NULL) {
                return CLI_EXIT_USAGE;
            }
            i++;
            continue;
        }
        return USAGE_ERROR(NULL, "unknown option '%s'", a);
    }
    if (i >= argc) {
        return USAGE_ERROR(NULL, "missing command");
    }
    if ((cmd = find_command(argv[i])) == NULL) {
        return USAGE_ERROR(NULL, "unknown command '%s'", argv[i]);
    }
    return cmd->run(cmd, argc - i, argv + i);
}
