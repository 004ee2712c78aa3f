#include "user.h"

#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define STEP "user"

static int is_num(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
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
    cleanup_free char *text = tsfig_read_all("/etc/passwd", NULL);
    if (text == NULL)
        return;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[7];
        if (line[0] == '#' || fields(line, f, 7) < 7 || !is_num(f[2]) || !is_num(f[3]))
            continue;
        if (is_num(spec) ? strtoul(f[2], NULL, 10) != strtoul(spec, NULL, 10) : strcmp(f[0], spec) != 0)
            continue;
        out->found = 1;
        tsfig_fmt(out->name, sizeof out->name, "%s", f[0]);
        out->uid = (uid_t)strtoul(f[2], NULL, 10);
        out->gid = (gid_t)strtoul(f[3], NULL, 10);
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
    cleanup_free char *text = tsfig_read_all("/etc/group", NULL);
    if (text == NULL)
        return -1;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[4];
        if (line[0] == '#' || fields(line, f, 4) < 4 || !is_num(f[2]))
            continue;
        gid_t gid = (gid_t)strtoul(f[2], NULL, 10);
        if (member != NULL) {
            char *s2 = NULL;
            for (char *u = strtok_r(f[3], ",", &s2); u; u = strtok_r(NULL, ",", &s2))
                if (strcmp(u, member) == 0)
                    push_gid(ids, gid);
            continue;
        }
        if (is_num(spec) ? gid == (gid_t)strtoul(spec, NULL, 10) : strcmp(f[0], spec) == 0) {
            *out = gid;
            return 0;
        }
    }
    return -1;
}

static int resolve_group(const char *spec, gid_t *out, tsfig_error_t *err)
{
    if (scan_groups(spec, NULL, NULL, out) == 0)
        return 0;
    if (is_num(spec)) {
        *out = (gid_t)strtoul(spec, NULL, 10);
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
    struct pw pw;
    find_user(user, &pw);
    if (!pw.found && !is_num(user))
        return tsfig_make_error(err, 0, STEP, "unable to find user %s: no matching entries in passwd file", user);
    ids->uid = pw.found ? pw.uid : (uid_t)strtoul(user, NULL, 10);
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
