#include "conf.h"

#include "caps.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#define STEP "parse config"

static const struct {
    const char *name;
    int resource;
} rlimit_names[] = {
    {"CPU", RLIMIT_CPU},         {"FSIZE", RLIMIT_FSIZE},       {"DATA", RLIMIT_DATA},
    {"STACK", RLIMIT_STACK},     {"CORE", RLIMIT_CORE},         {"RSS", RLIMIT_RSS},
    {"NPROC", RLIMIT_NPROC},     {"NOFILE", RLIMIT_NOFILE},     {"MEMLOCK", RLIMIT_MEMLOCK},
    {"AS", RLIMIT_AS},           {"LOCKS", RLIMIT_LOCKS},       {"SIGPENDING", RLIMIT_SIGPENDING},
    {"MSGQUEUE", RLIMIT_MSGQUEUE}, {"NICE", RLIMIT_NICE},       {"RTPRIO", RLIMIT_RTPRIO},
    {"RTTIME", RLIMIT_RTTIME},
};

/* Undoes the value escapes \\ \n \t in place. */
static int unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r != '\\') {
            *w++ = *r;
            continue;
        }
        r++;
        if (*r == '\\')
            *w++ = '\\';
        else if (*r == 'n')
            *w++ = '\n';
        else if (*r == 't')
            *w++ = '\t';
        else
            return -1;
    }
    *w = '\0';
    return 0;
}

static int parse_bool(const char *key, const char *v, int *out, tsfig_error_t *err)
{
    if (strcmp(v, "0") == 0 || strcmp(v, "1") == 0) {
        *out = v[0] == '1';
        return 0;
    }
    return tsfig_make_error(err, 0, STEP, "invalid value `%s` for `%s`: expected 0 or 1", v, key);
}

static int parse_num(const char *key, const char *v, int64_t min, int64_t *out, tsfig_error_t *err)
{
    if (tsfig_parse_int64(v, out) < 0 || *out < min)
        return tsfig_make_error(err, 0, STEP, "invalid number `%s` for `%s`", v, key);
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    if (strcasecmp(s, "unlimited") == 0 || strcmp(s, "-1") == 0) {
        *out = RLIM_INFINITY;
        return 0;
    }
    char *end;
    errno = 0;
    if (*s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

static int parse_rlimit(const char *v, struct tsfig_conf *c, tsfig_error_t *err)
{
    char name[32], soft[32], hard[32];
    if (sscanf(v, "%31s %31s %31s", name, soft, hard) != 3)
        return tsfig_make_error(err, 0, STEP, "invalid rlimit `%s`", v);
    const char *n = name;
    if (strncasecmp(n, "RLIMIT_", 7) == 0)
        n += 7;
    struct tsfig_rlimit r = {0};
    size_t i;
    for (i = 0; i < sizeof rlimit_names / sizeof rlimit_names[0]; i++)
        if (strcasecmp(rlimit_names[i].name, n) == 0)
            break;
    if (i == sizeof rlimit_names / sizeof rlimit_names[0])
        return tsfig_make_error(err, 0, STEP, "unknown rlimit `%s`", name);
    r.resource = rlimit_names[i].resource;
    tsfig_fmt(r.name, sizeof r.name, "%s", rlimit_names[i].name);
    if (parse_u64(soft, &r.soft) < 0 || parse_u64(hard, &r.hard) < 0 || r.soft > r.hard)
        return tsfig_make_error(err, 0, STEP, "invalid rlimit values `%s`", v);
    c->rlimits = tsfig_xrealloc(c->rlimits, (c->n_rlimits + 1) * sizeof *c->rlimits);
    c->rlimits[c->n_rlimits++] = r;
    return 0;
}

static int parse_sysctl(const char *v, struct tsfig_conf *c, tsfig_error_t *err)
{
    const char *sp = strchr(v, ' ');
    if (sp == NULL || sp == v || strstr(v, "..") != NULL || memchr(v, '/', (size_t)(sp - v)) != NULL)
        return tsfig_make_error(err, 0, STEP, "invalid sysctl `%s`", v);
    c->sysctls = tsfig_xrealloc(c->sysctls, (c->n_sysctls + 1) * sizeof *c->sysctls);
    c->sysctls[c->n_sysctls].key = strndup(v, (size_t)(sp - v));
    c->sysctls[c->n_sysctls].value = tsfig_xstrdup(sp + 1);
    c->n_sysctls++;
    return 0;
}

static int set_str(char **dst, const char *key, const char *v, tsfig_error_t *err)
{
    if (*dst != NULL)
        return tsfig_make_error(err, 0, STEP, "duplicate key `%s`", key);
    *dst = tsfig_xstrdup(v);
    return 0;
}

/* `userns UID GID SIZE`: the host's first uid and gid of the container's range; never 0, inside 32 bits. */
static int parse_userns(const char *v, struct tsfig_conf *c, tsfig_error_t *err)
{
    unsigned long long uid, gid, size;
    char extra;
    if (sscanf(v, "%llu %llu %llu %c", &uid, &gid, &size, &extra) != 3 || uid == 0 || gid == 0 || size == 0
        || size > 4294967295ULL || uid + size > 4294967295ULL || gid + size > 4294967295ULL)
        return tsfig_make_error(err, 0, STEP, "invalid userns `%s`: UID GID SIZE, a range of the host's ids above 0", v);
    c->userns_uid = (uint32_t)uid;
    c->userns_gid = (uint32_t)gid;
    c->userns_size = (uint32_t)size;
    return 0;
}

static int parse_mount_key(const char *key, const char *v, struct tsfig_conf *c, tsfig_error_t *err)
{
    if (c->n_mounts == 0)
        return tsfig_make_error(err, 0, STEP, "`%s` before any `mount`", key);
    struct tsfig_mount *m = &c->mounts[c->n_mounts - 1];
    if (strcmp(key, "mount.type") == 0) {
        if (strcmp(v, "bind") != 0 && strcmp(v, "tmpfs") != 0 && strcmp(v, "overlay") != 0)
            return tsfig_make_error(err, 0, STEP, "unsupported mount type `%s`", v);
        return set_str(&m->type, key, v, err);
    }
    if (strcmp(key, "mount.source") == 0)
        return set_str(&m->source, key, v, err);
    if (strcmp(key, "mount.options") == 0)
        return set_str(&m->options, key, v, err);
    if (strcmp(key, "mount.copy") == 0)
        return parse_bool(key, v, &m->copy, err);
    if (strcmp(key, "mount.idmap") == 0)
        return parse_bool(key, v, &m->idmap, err);
    if (strcmp(key, "mount.subpath") == 0) {
        /* relative, no empty, `.` or `..` component: the engine checked it already; openat2 enforces it anyway */
        int bad = v[0] == '\0' || v[0] == '/';
        for (const char *p = v; !bad && *p;) {
            size_t l = strcspn(p, "/");
            bad = l == 0 || (l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.');
            p += l;
            if (*p == '/')
                p++, bad = bad || *p == '\0';
        }
        if (bad)
            return tsfig_make_error(err, 0, STEP, "invalid mount.subpath `%s`: a relative path inside the source", v);
        return set_str(&m->subpath, key, v, err);
    }
    return tsfig_make_error(err, 0, STEP, "unknown key `%s`", key);
}

static int parse_kv(const char *key, const char *v, struct tsfig_conf *c, tsfig_error_t *err)
{
    struct {
        const char *key;
        char **dst;
    } strs[] = {
        {"id", &c->id},       {"name", &c->name},   {"rootfs", &c->rootfs}, {"upper", &c->upper},
        {"work", &c->work},   {"hostname", &c->hostname}, {"cwd", &c->cwd}, {"user", &c->user},
        {"netns", &c->netns}, {"cgroup", &c->cgroup}, {"log", &c->log},   {"run_dir", &c->run_dir},
        {"status", &c->status},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (strcmp(key, strs[i].key) == 0)
            return set_str(strs[i].dst, key, v, err);
    struct {
        const char *key;
        int *dst;
    } bools[] = {
        {"readonly", &c->readonly}, {"privileged", &c->privileged}, {"no_new_privs", &c->no_new_privs},
        {"init", &c->init},         {"tty", &c->tty},               {"stdin", &c->stdin_},
        {"lower_shifted", &c->lower_shifted},
    };
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++)
        if (strcmp(key, bools[i].key) == 0)
            return parse_bool(key, v, bools[i].dst, err);
    struct {
        const char *key;
        int64_t *dst;
        int64_t min;
    } nums[] = {
        {"memory", &c->memory, 0},         {"memory_swap", &c->memory_swap, -1}, {"pids", &c->pids, 0},
        {"shm_size", &c->shm_size, 0},
        {"cpu_quota", &c->cpu_quota, -1},  {"cpu_period", &c->cpu_period, 0},    {"cpu_shares", &c->cpu_shares, 0},
        {"log_max_size", &c->log_max_size, 0}, {"log_max_files", &c->log_max_files, 1},
        {"restart_max", &c->restart_max, 0},   {"health_interval_ms", &c->health_interval_ms, 0},
        {"health_timeout_ms", &c->health_timeout_ms, 0}, {"health_retries", &c->health_retries, 0},
        {"health_start_period_ms", &c->health_start_period_ms, 0},
        {"health_start_interval_ms", &c->health_start_interval_ms, 0},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        if (strcmp(key, nums[i].key) == 0)
            return parse_num(key, v, nums[i].min, nums[i].dst, err);
    int64_t n;
    if (strcmp(key, "lower") == 0) {
        tsfig_strv_push(&c->lower, &c->n_lower, v);
        return 0;
    }
    if (strcmp(key, "arg") == 0) {
        tsfig_strv_push(&c->args, &c->n_args, v);
        return 0;
    }
    if (strcmp(key, "env") == 0) {
        if (strchr(v, '=') == NULL || v[0] == '=')
            return tsfig_make_error(err, 0, STEP, "invalid env `%s`", v);
        tsfig_strv_push(&c->env, &c->n_env, v);
        return 0;
    }
    if (strcmp(key, "env_file") == 0) {
        /* KEY=PATH: KEY set to the file's content (a build secret's env=), so the value is in no file the engine
         * keeps but its root-only copy; read here, wiped from the buffers after use. */
        const char *eq = strchr(v, '=');
        if (eq == NULL || eq == v || eq[1] != '/')
            return tsfig_make_error(err, 0, STEP, "invalid env_file `%s`: expected KEY=/absolute/path", v);
        size_t len = 0;
        char *data = tsfig_read_all(eq + 1, &len);
        if (data == NULL)
            return tsfig_make_error(err, errno, STEP, "cannot read env_file `%s`", eq + 1);
        if (strlen(data) != len) {
            explicit_bzero(data, len);
            free(data);
            return tsfig_make_error(err, 0, STEP, "env_file `%s` holds a NUL byte", eq + 1);
        }
        size_t kl = (size_t)(eq - v) + 1;
        char *entry = tsfig_xrealloc(NULL, kl + len + 1);
        memcpy(entry, v, kl);
        memcpy(entry + kl, data, len + 1);
        tsfig_strv_push(&c->env, &c->n_env, entry);
        explicit_bzero(entry, kl + len);
        explicit_bzero(data, len);
        free(entry);
        free(data);
        return 0;
    }
    if (strcmp(key, "health_cmd") == 0) {
        tsfig_strv_push(&c->health_cmd, &c->n_health_cmd, v);
        return 0;
    }
    if (strcmp(key, "exit_cmd") == 0) {
        if (c->n_exit_cmd == 0 && v[0] != '/')
            return tsfig_make_error(err, 0, STEP, "`exit_cmd` must start with an absolute path");
        tsfig_strv_push(&c->exit_cmd, &c->n_exit_cmd, v);
        return 0;
    }
    if (strcmp(key, "exit_env") == 0) {
        if (strchr(v, '=') == NULL || v[0] == '=')
            return tsfig_make_error(err, 0, STEP, "invalid exit_env `%s`", v);
        tsfig_strv_push(&c->exit_env, &c->n_exit_env, v);
        return 0;
    }
    if (strcmp(key, "restart") == 0) {
        static const char *const policies[] = {"no", "always", "on-failure", "unless-stopped"};
        for (int i = 0; i < 4; i++)
            if (strcmp(v, policies[i]) == 0) {
                c->restart = i;
                return 0;
            }
        return tsfig_make_error(err, 0, STEP, "invalid restart policy `%s`", v);
    }
    if (strcmp(key, "group_add") == 0) {
        tsfig_strv_push(&c->group_add, &c->n_group_add, v);
        return 0;
    }
    if (strcmp(key, "mount") == 0) {
        if (v[0] != '/')
            return tsfig_make_error(err, 0, STEP, "mount destination `%s` is not absolute", v);
        c->mounts = tsfig_xrealloc(c->mounts, (c->n_mounts + 1) * sizeof *c->mounts);
        memset(&c->mounts[c->n_mounts], 0, sizeof *c->mounts);
        c->mounts[c->n_mounts++].dest = tsfig_xstrdup(v);
        return 0;
    }
    if (strncmp(key, "mount.", 6) == 0)
        return parse_mount_key(key, v, c, err);
    if (strcmp(key, "cap") == 0) {
        int cap = tsfig_cap_from_name(v);
        if (cap < 0)
            return tsfig_make_error(err, 0, STEP, "unknown capability `%s`", v);
        c->caps |= UINT64_C(1) << cap;
        return 0;
    }
    if (strcmp(key, "seccomp") == 0) {
        if (strcmp(v, "default") != 0 && strcmp(v, "unconfined") != 0)
            return tsfig_make_error(err, 0, STEP, "invalid seccomp `%s`", v);
        c->seccomp_default = strcmp(v, "default") == 0;
        return 0;
    }
    if (strcmp(key, "rlimit") == 0)
        return parse_rlimit(v, c, err);
    if (strcmp(key, "sysctl") == 0)
        return parse_sysctl(v, c, err);
    if (strcmp(key, "userns") == 0)
        return parse_userns(v, c, err);
    if (strcmp(key, "stop_signal") == 0) {
        if (parse_num(key, v, 1, &n, err) < 0 || n >= NSIG)
            return tsfig_make_error(err, 0, STEP, "invalid signal `%s`", v);
        c->stop_signal = (int)n;
        return 0;
    }
    if (strcmp(key, "oom_score_adj") == 0) {
        if (tsfig_parse_int64(v, &n) < 0 || n < -1000 || n > 1000)
            return tsfig_make_error(err, 0, STEP, "invalid oom_score_adj `%s`", v);
        c->oom_score_adj = (int)n;
        return 0;
    }
    return tsfig_make_error(err, 0, STEP, "unknown key `%s`", key);
}

static int check_abs(const char *key, const char *v, tsfig_error_t *err)
{
    if (v == NULL)
        return tsfig_make_error(err, 0, STEP, "missing key `%s`", key);
    if (v[0] != '/')
        return tsfig_make_error(err, 0, STEP, "`%s` must be an absolute path", key);
    return 0;
}

static void strv_free(char **v, size_t n);

/* health_cmd is Docker's Test array: CMD ARG..., CMD-SHELL "command" (run by /bin/sh -c) or NONE. */
static int validate_health(struct tsfig_conf *c, tsfig_error_t *err)
{
    char **test = c->health_cmd;
    size_t n = c->n_health_cmd;
    c->health_cmd = NULL;
    c->n_health_cmd = 0;
    if (n == 0)
        return 0;
    int ok = 1;
    if (strcmp(test[0], "CMD") == 0 && n >= 2) {
        for (size_t i = 1; i < n; i++)
            tsfig_strv_push(&c->health_cmd, &c->n_health_cmd, test[i]);
    } else if (strcmp(test[0], "CMD-SHELL") == 0 && n == 2) {
        tsfig_strv_push(&c->health_cmd, &c->n_health_cmd, "/bin/sh");
        tsfig_strv_push(&c->health_cmd, &c->n_health_cmd, "-c");
        tsfig_strv_push(&c->health_cmd, &c->n_health_cmd, test[1]);
    } else if (strcmp(test[0], "NONE") != 0 || n != 1) {
        ok = 0;
    }
    strv_free(test, n);
    if (!ok)
        return tsfig_make_error(err, 0, STEP, "invalid `health_cmd`: expected CMD ARG..., CMD-SHELL COMMAND or NONE");
    /* Docker's defaults for 0 */
    if (c->health_interval_ms == 0)
        c->health_interval_ms = 30000;
    if (c->health_timeout_ms == 0)
        c->health_timeout_ms = 30000;
    if (c->health_retries == 0)
        c->health_retries = 3;
    if (c->health_start_interval_ms == 0)
        c->health_start_interval_ms = 5000;
    return 0;
}

static int validate(struct tsfig_conf *c, tsfig_error_t *err)
{
    if (c->id == NULL)
        return tsfig_make_error(err, 0, STEP, "missing key `id`");
    if (c->n_lower == 0)
        return tsfig_make_error(err, 0, STEP, "missing key `lower`");
    if (c->n_args == 0)
        return tsfig_make_error(err, 0, STEP, "missing key `arg`");
    if (check_abs("rootfs", c->rootfs, err) < 0 || check_abs("upper", c->upper, err) < 0
        || check_abs("work", c->work, err) < 0 || check_abs("log", c->log, err) < 0
        || check_abs("run_dir", c->run_dir, err) < 0 || check_abs("status", c->status, err) < 0)
        return -1;
    if (c->cgroup == NULL)
        return tsfig_make_error(err, 0, STEP, "missing key `cgroup`");
    if (c->cgroup[0] == '/' || c->cgroup[0] == '\0' || strstr(c->cgroup, "..") != NULL)
        return tsfig_make_error(err, 0, STEP, "invalid cgroup path `%s`", c->cgroup);
    if (c->cwd != NULL && c->cwd[0] != '/')
        return tsfig_make_error(err, 0, STEP, "`cwd` must be an absolute path");
    if (c->netns == NULL)
        c->netns = tsfig_xstrdup("new");
    if (strcmp(c->netns, "host") != 0 && strcmp(c->netns, "new") != 0 && c->netns[0] != '/')
        return tsfig_make_error(err, 0, STEP, "invalid netns `%s`", c->netns);
    for (size_t i = 0; i < c->n_mounts; i++) {
        struct tsfig_mount *m = &c->mounts[i];
        if (m->type == NULL)
            return tsfig_make_error(err, 0, STEP, "mount `%s` has no `mount.type`", m->dest);
        if (strcmp(m->type, "bind") == 0 && (m->source == NULL || m->source[0] != '/'))
            return tsfig_make_error(err, 0, STEP, "bind mount `%s` needs an absolute `mount.source`", m->dest);
        if (m->copy && strcmp(m->type, "bind") != 0)
            return tsfig_make_error(err, 0, STEP, "`mount.copy` only applies to bind mounts (`%s`)", m->dest);
        if (m->subpath != NULL && strcmp(m->type, "tmpfs") == 0)
            return tsfig_make_error(err, 0, STEP, "`mount.subpath` does not apply to tmpfs mounts (`%s`)", m->dest);
        if (m->subpath != NULL && m->copy)
            return tsfig_make_error(err, 0, STEP, "`mount.copy` cannot go with `mount.subpath` (`%s`)", m->dest);
    }
    if (c->cwd == NULL)
        c->cwd = tsfig_xstrdup("/");
    if (c->user == NULL)
        c->user = tsfig_xstrdup("");
    if (c->name == NULL)
        c->name = tsfig_xstrdup(c->id);
    if (c->privileged)
        c->caps = tsfig_caps_all();
    return validate_health(c, err);
}

int tsfig_conf_parse(const char *text, struct tsfig_conf *c, tsfig_error_t *err)
{
    memset(c, 0, sizeof *c);
    c->stop_signal = SIGTERM;
    c->log_max_files = 1;
    c->seccomp_default = 1;
    int lineno = 0, have_version = 0;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        cleanup_free char *line = strndup(p, len);
        p += len + (nl ? 1 : 0);
        lineno++;
        if (line == NULL)
            abort();
        if (len == 0)
            continue;
        char *sp = strchr(line, ' ');
        const char *v = "";
        if (sp != NULL) {
            *sp = '\0';
            v = sp + 1;
        }
        if (unescape((char *)v) < 0)
            return tsfig_make_error(err, 0, STEP, "invalid escape on line %d", lineno);
        if (lineno == 1 || !have_version) {
            if (strcmp(line, "version") != 0 || strcmp(v, "1") != 0)
                return tsfig_make_error(err, 0, STEP, "unsupported runtime.conf: first line must be `version 1`");
            have_version = 1;
            continue;
        }
        if (strcmp(line, "version") == 0)
            return tsfig_make_error(err, 0, STEP, "duplicate key `version`");
        if (parse_kv(line, v, c, err) < 0) {
            char more[1100];
            tsfig_fmt(more, sizeof more, "%s (line %d)", err->msg, lineno);
            tsfig_fmt(err->msg, sizeof err->msg, "%s", more);
            return -1;
        }
    }
    if (!have_version)
        return tsfig_make_error(err, 0, STEP, "missing key `version`");
    return validate(c, err);
}

int tsfig_conf_load(const char *dir, struct tsfig_conf *conf, tsfig_error_t *err)
{
    char path[PATH_MAX];
    tsfig_fmt(path, sizeof path, "%s/runtime.conf", dir);
    cleanup_free char *text = tsfig_read_all(path, NULL);
    if (text == NULL)
        return tsfig_make_error(err, errno, STEP, "read `%s`", path);
    return tsfig_conf_parse(text, conf, err);
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void tsfig_conf_free(struct tsfig_conf *c)
{
    char *strs[] = {c->id,   c->name,   c->rootfs, c->upper, c->work,    c->hostname, c->cwd,
                    c->user, c->netns,  c->cgroup, c->log,   c->run_dir, c->status};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        free(strs[i]);
    strv_free(c->lower, c->n_lower);
    strv_free(c->args, c->n_args);
    strv_free(c->env, c->n_env);
    strv_free(c->group_add, c->n_group_add);
    strv_free(c->health_cmd, c->n_health_cmd);
    strv_free(c->exit_cmd, c->n_exit_cmd);
    strv_free(c->exit_env, c->n_exit_env);
    for (size_t i = 0; i < c->n_mounts; i++) {
        free(c->mounts[i].dest);
        free(c->mounts[i].type);
        free(c->mounts[i].source);
        free(c->mounts[i].options);
        free(c->mounts[i].subpath);
    }
    free(c->mounts);
    for (size_t i = 0; i < c->n_sysctls; i++) {
        free(c->sysctls[i].key);
        free(c->sysctls[i].value);
    }
    free(c->sysctls);
    free(c->rlimits);
    memset(c, 0, sizeof *c);
}
