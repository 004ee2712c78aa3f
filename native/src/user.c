#include "user.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#define STEP "user"
#define DB_MAX (1024 * 1024)

static int is_num(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* Ids are 0..2147483647 (as Docker's): 4294967295 is (uid_t)-1, "unchanged" to setresuid, and larger values wrap. */
#define ID_MAX 2147483647UL

/* A numeric id within range into *out; 0 if s is numeric but out of range, -1 if it is not a number. */
static int parse_id(const char *s, unsigned long *out)
{
    if (!is_num(s))
        return -1;
    errno = 0;
    unsigned long v = strtoul(s, NULL, 10);
    if (errno == ERANGE || v > ID_MAX || strlen(s) > 10)
        return 0;
    *out = v;
    return 1;
}

/* /etc/passwd or /etc/group of the current root (the container's): never through a symlink, a FIFO or a device,
 * never more than 1 MiB (a hostile image's /dev/zero or FIFO would hang or exhaust the runtime). NULL with errno. */
static char *read_db(const char *name)
{
    int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return NULL;
    int fd = tsfig_open_in_root(root, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0);
    int saved = errno;
    close(root);
    if (fd < 0) {
        errno = saved;
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > DB_MAX) {
        close(fd);
        errno = EINVAL;
        return NULL;
    }
    char *buf = malloc(DB_MAX + 1);
    size_t got = 0;
    while (buf != NULL && got < DB_MAX) {
        ssize_t n = TEMP_FAILURE_RETRY(read(fd, buf + got, DB_MAX - got));
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (buf != NULL)
        buf[got] = '\0';
    return buf;
}

/* Splits a colon-separated line into at most n fields (in place). Returns the field count. */
static int fields(char *line, char **f, int n)
{
    int i = 0;
    f[i++] = line;
    for (char *p = line; *p && i < n; p++)
        if (*p == ':') {
            *p = '\0';
            f[i++] = p + 1;
        }
    return i;
}

struct pw {
    int found;
    char name[256];
    uid_t uid;
    gid_t gid;
    char home[1024];
};

static void find_user(const char *spec, struct pw *out)
{
    memset(out, 0, sizeof *out);
    cleanup_free char *text = read_db("etc/passwd");
    if (text == NULL)
        return;
    unsigned long want = 0;
    int numeric = parse_id(spec, &want) == 1;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[7];
        unsigned long uid, gid;
        if (line[0] == '#' || fields(line, f, 7) < 7 || parse_id(f[2], &uid) != 1 || parse_id(f[3], &gid) != 1)
            continue; /* an entry with an id out of range is no entry (never uid (uid_t)-1) */
        if (numeric ? uid != want : strcmp(f[0], spec) != 0)
            continue;
        out->found = 1;
        tsfig_fmt(out->name, sizeof out->name, "%s", f[0]);
        out->uid = (uid_t)uid;
        out->gid = (gid_t)gid;
        tsfig_fmt(out->home, sizeof out->home, "%s", f[5]);
        return;
    }
}

static void push_gid(struct tsfig_ids *ids, gid_t g)
{
    for (size_t i = 0; i < ids->n_groups; i++)
        if (ids->groups[i] == g)
            return;
    ids->groups = tsfig_xrealloc(ids->groups, (ids->n_groups + 1) * sizeof(gid_t));
    ids->groups[ids->n_groups++] = g;
}

/* Looks up group spec by name or gid; with member set, adds every group listing member instead. */
static int scan_groups(const char *spec, const char *member, struct tsfig_ids *ids, gid_t *out)
{
    cleanup_free char *text = read_db("etc/group");
    if (text == NULL)
        return -1;
    unsigned long want = 0;
    int numeric = spec != NULL && parse_id(spec, &want) == 1;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[4];
        unsigned long id;
        if (line[0] == '#' || fields(line, f, 4) < 4 || parse_id(f[2], &id) != 1)
            continue;
        gid_t gid = (gid_t)id;
        if (member != NULL) {
            char *s2 = NULL;
            for (char *u = strtok_r(f[3], ",", &s2); u; u = strtok_r(NULL, ",", &s2))
                if (strcmp(u, member) == 0)
                    push_gid(ids, gid);
            continue;
        }
        if (numeric ? id == want : strcmp(f[0], spec) == 0) {
            *out = gid;
            return 0;
        }
    }
    return -1;
}

static int resolve_group(const char *spec, gid_t *out, tsfig_error_t *err)
{
    unsigned long id;
    int numeric = parse_id(spec, &id);
    if (numeric == 0)
        return tsfig_make_error(err, ERANGE, STEP, "group id %s is out of range (0 to 2147483647)", spec);
    if (scan_groups(spec, NULL, NULL, out) == 0)
        return 0;
    if (numeric == 1) {
        *out = (gid_t)id;
        return 0;
    }
    return tsfig_make_error(err, 0, STEP, "unable to find group %s: no matching entries in group file", spec);
}

int tsfig_user_resolve(const char *spec, char *const *group_add, size_t n_group_add, struct tsfig_ids *ids,
                       tsfig_error_t *err)
{
    char user[512] = "0";
    const char *group = NULL;
    memset(ids, 0, sizeof *ids);
    if (spec != NULL && *spec != '\0')
        tsfig_fmt(user, sizeof user, "%s", spec);
    char *colon = strchr(user, ':');
    if (colon != NULL) {
        *colon = '\0';
        group = colon + 1;
    }
    unsigned long uid = 0;
    int numeric = parse_id(user, &uid);
    if (numeric == 0)
        return tsfig_make_error(err, ERANGE, STEP, "user id %s is out of range (0 to 2147483647)", user);
    struct pw pw;
    find_user(user, &pw);
    if (!pw.found && numeric != 1)
        return tsfig_make_error(err, 0, STEP, "unable to find user %s: no matching entries in passwd file", user);
    ids->uid = pw.found ? pw.uid : (uid_t)uid;
    ids->gid = pw.found ? pw.gid : 0;
    ids->home = tsfig_xstrdup(pw.found && pw.home[0] ? pw.home : "/");
    if (group != NULL && *group != '\0') {
        if (resolve_group(group, &ids->gid, err) < 0)
            return -1;
    } else if (pw.found) {
        gid_t unused;
        (void)scan_groups(NULL, pw.name, ids, &unused);
    }
    for (size_t i = 0; i < n_group_add; i++) {
        gid_t g;
        if (resolve_group(group_add[i], &g, err) < 0)
            return -1;
        push_gid(ids, g);
    }
    return 0;
}

void tsfig_ids_free(struct tsfig_ids *ids)
{
    free(ids->groups);
    free(ids->home);
    ids->groups = NULL;
    ids->home = NULL;
}
