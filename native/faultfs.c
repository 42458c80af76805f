/* esrt-faultfs: a passthrough FUSE file system that fails or slows I/O on command.
 *
 *   esrt-faultfs [-f] [-o OPTIONS] SOURCE_DIR MOUNTPOINT
 *
 * MOUNTPOINT mirrors SOURCE_DIR. The file ".esrt-faultfs" in the mount's root is not passed
 * through (and not listed): writing one line to it sets the mode, reading it tells the mode and
 * how many operations were failed or delayed so far.
 *
 *   ok            pass everything through
 *   eio           reads, writes, syncs, truncation, allocation and every change of a directory
 *                 (create, unlink, rename, mkdir...) fail with EIO: a disk that has died
 *   eio-writes    the same, but reads still work: a disk that fails its writes
 *   slow MS       every read, write and sync waits MS milliseconds first: a disk in trouble
 *
 * Looking things up, stat, opening an existing file without O_TRUNC, listing and closing still
 * work in the eio modes, as they do on a dying disk whose metadata is cached: a test then sees
 * the errors where a program meets them (a commit, a read), not in its first stat.
 *
 * esrt's regions keep a Berkeley DB environment here, whose region files (__db.*) are mapped
 * MAP_SHARED by several processes at once. The kernel keeps one page cache per FUSE inode, and
 * we ask it to keep that cache when a file is opened again (kernel_cache): without that, every
 * open by a new process drops the pages every other process has mapped, and writes them back
 * through us first, which in the eio modes would lose live shared memory. Nothing but this
 * mount changes SOURCE_DIR while it is mounted (that is the contract), so the cache stays true.
 * No file is opened with direct_io except the control file.
 *
 * Built with libfuse3's high-level API (pkg-config fuse3); setup.py puts it in esrt/lib.
 */

#define FUSE_USE_VERSION 31
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CONTROL_NAME ".esrt-faultfs"
#define CONTROL_PATH "/" CONTROL_NAME
/* The file handle of the control file: no descriptor has this value. */
#define CONTROL_FH UINT64_MAX
#define MAX_DELAY_MS 600000

enum mode { MODE_OK, MODE_EIO, MODE_EIO_WRITES, MODE_SLOW };
/* What an operation does to the disk, which decides whether a mode touches it. */
enum touch { TOUCH_READ, TOUCH_WRITE, TOUCH_SYNC, TOUCH_NAMESPACE };

static const char *const MODE_NAMES[] = {"ok", "eio", "eio-writes", "slow"};

/* The source directory, open: every path is resolved relative to it (the *at calls), so the
 * mount may even sit over SOURCE_DIR itself without looping back into us. */
static int source_fd = -1;
static char *source_path;

static atomic_int mode = MODE_OK;
static atomic_uint delay_ms;
static atomic_ulong failed_count;
static atomic_ulong delayed_count;

/* A FUSE path ("/a/b") as a path relative to source_fd. */
static const char *relative(const char *path)
{
    if (path == NULL || path[0] == '\0' || strcmp(path, "/") == 0)
        return ".";
    return path[0] == '/' ? path + 1 : path;
}

static int is_control(const char *path)
{
    return path != NULL && strcmp(path, CONTROL_PATH) == 0;
}

static void sleep_ms(unsigned ms)
{
    struct timespec rest = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&rest, &rest) != 0 && errno == EINTR)
        ;
}

/* 0 to go on with the operation, or -EIO to fail it; waits first in slow mode. */
static int fault(enum touch touch)
{
    switch (atomic_load(&mode)) {
    case MODE_EIO:
        atomic_fetch_add(&failed_count, 1);
        return -EIO;
    case MODE_EIO_WRITES:
        if (touch == TOUCH_READ)
            return 0;
        atomic_fetch_add(&failed_count, 1);
        return -EIO;
    case MODE_SLOW:
        if (touch == TOUCH_NAMESPACE)
            return 0;
        atomic_fetch_add(&delayed_count, 1);
        sleep_ms(atomic_load(&delay_ms));
        return 0;
    default:
        return 0;
    }
}

static int fail_errno(void)
{
    return -errno;
}

/* --- the control file ------------------------------------------------------------------ */

static int control_text(char *buffer, size_t size)
{
    int current = atomic_load(&mode);
    char name[32];
    if (current == MODE_SLOW)
        snprintf(name, sizeof name, "slow %u", atomic_load(&delay_ms));
    else
        snprintf(name, sizeof name, "%s", MODE_NAMES[current]);
    return snprintf(buffer, size, "%s\nfailed %lu\ndelayed %lu\n", name,
                    atomic_load(&failed_count), atomic_load(&delayed_count));
}

/* Sets the mode from one command line; -EINVAL when it is not one. */
static int control_command(const char *data, size_t size)
{
    char line[64];
    if (size >= sizeof line)
        return -EINVAL;
    memcpy(line, data, size);
    line[size] = '\0';
    /* `echo eio > file` writes a newline; tolerate any trailing space. */
    size_t end = strlen(line);
    while (end > 0 && (line[end - 1] == '\n' || line[end - 1] == ' ' || line[end - 1] == '\t'
                       || line[end - 1] == '\r'))
        line[--end] = '\0';

    int next;
    unsigned delay = 0;
    if (strcmp(line, "ok") == 0) {
        next = MODE_OK;
    } else if (strcmp(line, "eio") == 0) {
        next = MODE_EIO;
    } else if (strcmp(line, "eio-writes") == 0) {
        next = MODE_EIO_WRITES;
    } else if (strncmp(line, "slow ", 5) == 0) {
        char *after;
        errno = 0;
        unsigned long value = strtoul(line + 5, &after, 10);
        if (errno != 0 || after == line + 5 || *after != '\0' || value > MAX_DELAY_MS)
            return -EINVAL;
        next = MODE_SLOW;
        delay = (unsigned)value;
    } else {
        return -EINVAL;
    }
    /* The delay first: a thread that sees the new mode must not sleep the old delay. */
    atomic_store(&delay_ms, delay);
    atomic_store(&mode, next);
    fprintf(stderr, "esrt-faultfs: %s: mode %s\n", source_path, line);
    return 0;
}

static void control_stat(struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_mode = S_IFREG | 0600;
    st->st_nlink = 1;
    st->st_uid = getuid();
    st->st_gid = getgid();
    /* Its length is not known before it is read: readers are told it is empty, and
     * direct_io makes the kernel ask us anyway. */
    st->st_size = 0;
}

/* --- operations -------------------------------------------------------------------------- */

static void *faultfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    /* Every write back of a mapped page changes the file's mtime in SOURCE_DIR; with this
     * capability the kernel takes the new mtime for a change made elsewhere and drops the
     * file's pages from every mapping, which must then be read again: in the eio modes that
     * read fails and kills the mapping process with SIGBUS, which no real disk would do to
     * pages it had in memory. */
    conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
    cfg->use_ino = 1;
    /* Operations on open files come with their descriptor, so none needs its path; a file
     * unlinked while open (Berkeley DB recovery removes mapped region files) is then removed
     * at once instead of being renamed to .fuse_hidden* in SOURCE_DIR. */
    cfg->nullpath_ok = 1;
    cfg->hard_remove = 1;
    cfg->kernel_cache = 1;
    cfg->negative_timeout = 0;
    return NULL;
}

static int faultfs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    if (is_control(path) || (fi != NULL && fi->fh == CONTROL_FH)) {
        control_stat(st);
        return 0;
    }
    int rc = fi != NULL ? fstat((int)fi->fh, st)
                        : fstatat(source_fd, relative(path), st, AT_SYMLINK_NOFOLLOW);
    return rc == 0 ? 0 : fail_errno();
}

static int faultfs_access(const char *path, int mask)
{
    if (is_control(path))
        return 0;
    return faccessat(source_fd, relative(path), mask, 0) == 0 ? 0 : fail_errno();
}

static int faultfs_readlink(const char *path, char *buffer, size_t size)
{
    if (size == 0)
        return -EINVAL;
    ssize_t length = readlinkat(source_fd, relative(path), buffer, size - 1);
    if (length < 0)
        return fail_errno();
    buffer[length] = '\0';
    return 0;
}

static int faultfs_opendir(const char *path, struct fuse_file_info *fi)
{
    int fd = openat(source_fd, relative(path), O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return fail_errno();
    DIR *dir = fdopendir(fd);
    if (dir == NULL) {
        int saved = errno;
        close(fd);
        return -saved;
    }
    fi->fh = (uint64_t)(uintptr_t)dir;
    return 0;
}

static int faultfs_readdir(const char *path, void *buffer, fuse_fill_dir_t fill, off_t offset,
                           struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    (void)offset;
    (void)flags;
    DIR *dir = (DIR *)(uintptr_t)fi->fh;
    /* Offsets are not handed to the kernel (fill gets 0): it asks for the whole listing at
     * once, and again from the start after a rewind. */
    rewinddir(dir);
    int root = path != NULL && strcmp(path, "/") == 0;
    struct dirent *entry;
    errno = 0;
    while ((entry = readdir(dir)) != NULL) {
        if (root && strcmp(entry->d_name, CONTROL_NAME) == 0)
            continue;
        struct stat st;
        memset(&st, 0, sizeof st);
        st.st_ino = entry->d_ino;
        st.st_mode = (mode_t)DTTOIF(entry->d_type);
        if (fill(buffer, entry->d_name, &st, 0, 0))
            break;
    }
    return errno != 0 ? fail_errno() : 0;
}

static int faultfs_releasedir(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    closedir((DIR *)(uintptr_t)fi->fh);
    return 0;
}

static int faultfs_mknod(const char *path, mode_t mode_bits, dev_t rdev)
{
    int rc = fault(TOUCH_NAMESPACE);
    if (rc != 0)
        return rc;
    return mknodat(source_fd, relative(path), mode_bits, rdev) == 0 ? 0 : fail_errno();
}

static int faultfs_mkdir(const char *path, mode_t mode_bits)
{
    int rc = fault(TOUCH_NAMESPACE);
    if (rc != 0)
        return rc;
    return mkdirat(source_fd, relative(path), mode_bits) == 0 ? 0 : fail_errno();
}

static int faultfs_unlink(const char *path)
{
    if (is_control(path))
        return -EPERM;
    int rc = fault(TOUCH_NAMESPACE);
    if (rc != 0)
        return rc;
    return unlinkat(source_fd, relative(path), 0) == 0 ? 0 : fail_errno();
}

static int faultfs_rmdir(const char *path)
{
    int rc = fault(TOUCH_NAMESPACE);
    if (rc != 0)
        return rc;
    return unlinkat(source_fd, relative(path), AT_REMOVEDIR) == 0 ? 0 : fail_errno();
}

static int faultfs_symlink(const char *target, const char *path)
{
    int rc = fault(TOUCH_NAMESPACE);
    if (rc != 0)
        return rc;
    return symlinkat(target, source_fd, relative(path)) == 0 ? 0 : fail_errno();
}

static int faultfs_rename(const char *from, const char *to, unsigned int flags)
{
    if (is_control(from) || is_control(to))
        return -EPERM;
    int rc = fault(TOUCH_NAMESPACE);
    if (rc != 0)
        return rc;
    return renameat2(source_fd, relative(from), source_fd, relative(to), flags) == 0
               ? 0 : fail_errno();
}

static int faultfs_link(const char *from, const char *to)
{
    if (is_control(from) || is_control(to))
        return -EPERM;
    int rc = fault(TOUCH_NAMESPACE);
    if (rc != 0)
        return rc;
    return linkat(source_fd, relative(from), source_fd, relative(to), 0) == 0 ? 0 : fail_errno();
}

static int faultfs_chmod(const char *path, mode_t mode_bits, struct fuse_file_info *fi)
{
    if (is_control(path) || (fi != NULL && fi->fh == CONTROL_FH))
        return -EPERM;
    int rc = fi != NULL ? fchmod((int)fi->fh, mode_bits)
                        : fchmodat(source_fd, relative(path), mode_bits, 0);
    return rc == 0 ? 0 : fail_errno();
}

static int faultfs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    if (is_control(path) || (fi != NULL && fi->fh == CONTROL_FH))
        return -EPERM;
    int rc = fi != NULL ? fchown((int)fi->fh, uid, gid)
                        : fchownat(source_fd, relative(path), uid, gid, AT_SYMLINK_NOFOLLOW);
    return rc == 0 ? 0 : fail_errno();
}

static int faultfs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    /* `echo eio > control` truncates it first. */
    if (is_control(path) || (fi != NULL && fi->fh == CONTROL_FH))
        return 0;
    int rc = fault(TOUCH_WRITE);
    if (rc != 0)
        return rc;
    if (fi != NULL)
        return ftruncate((int)fi->fh, size) == 0 ? 0 : fail_errno();
    int fd = openat(source_fd, relative(path), O_WRONLY);
    if (fd < 0)
        return fail_errno();
    rc = ftruncate(fd, size) == 0 ? 0 : fail_errno();
    close(fd);
    return rc;
}

static int faultfs_utimens(const char *path, const struct timespec times[2],
                           struct fuse_file_info *fi)
{
    if (is_control(path) || (fi != NULL && fi->fh == CONTROL_FH))
        return 0;
    int rc = fi != NULL ? futimens((int)fi->fh, times)
                        : utimensat(source_fd, relative(path), times, AT_SYMLINK_NOFOLLOW);
    return rc == 0 ? 0 : fail_errno();
}

static int open_control(struct fuse_file_info *fi)
{
    fi->fh = CONTROL_FH;
    fi->direct_io = 1;
    fi->nonseekable = 1;
    return 0;
}

static int faultfs_create(const char *path, mode_t mode_bits, struct fuse_file_info *fi)
{
    if (is_control(path))
        return open_control(fi);
    int rc = fault(TOUCH_NAMESPACE);
    if (rc != 0)
        return rc;
    int fd = openat(source_fd, relative(path), fi->flags | O_CREAT, mode_bits);
    if (fd < 0)
        return fail_errno();
    fi->fh = (uint64_t)fd;
    return 0;
}

static int faultfs_open(const char *path, struct fuse_file_info *fi)
{
    if (is_control(path))
        return open_control(fi);
    if (fi->flags & O_TRUNC) {
        int rc = fault(TOUCH_WRITE);
        if (rc != 0)
            return rc;
    }
    int fd = openat(source_fd, relative(path), fi->flags & ~O_CREAT);
    if (fd < 0)
        return fail_errno();
    fi->fh = (uint64_t)fd;
    return 0;
}

static int faultfs_read(const char *path, char *buffer, size_t size, off_t offset,
                        struct fuse_file_info *fi)
{
    (void)path;
    if (fi->fh == CONTROL_FH) {
        char text[256];
        int length = control_text(text, sizeof text);
        if (offset >= length)
            return 0;
        size_t count = (size_t)(length - offset) < size ? (size_t)(length - offset) : size;
        memcpy(buffer, text + offset, count);
        return (int)count;
    }
    int rc = fault(TOUCH_READ);
    if (rc != 0)
        return rc;
    ssize_t count = pread((int)fi->fh, buffer, size, offset);
    return count < 0 ? fail_errno() : (int)count;
}

static int faultfs_write(const char *path, const char *buffer, size_t size, off_t offset,
                         struct fuse_file_info *fi)
{
    (void)path;
    (void)offset;
    if (fi->fh == CONTROL_FH) {
        int rc = control_command(buffer, size);
        return rc != 0 ? rc : (int)size;
    }
    int rc = fault(TOUCH_WRITE);
    if (rc != 0)
        return rc;
    ssize_t count = pwrite((int)fi->fh, buffer, size, offset);
    return count < 0 ? fail_errno() : (int)count;
}

static int faultfs_statfs(const char *path, struct statvfs *st)
{
    (void)path;
    return fstatvfs(source_fd, st) == 0 ? 0 : fail_errno();
}

static int faultfs_flush(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    (void)fi;
    /* Nothing is buffered here: writes went to SOURCE_DIR as they came. */
    return 0;
}

static int faultfs_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    if (fi->fh != CONTROL_FH)
        close((int)fi->fh);
    return 0;
}

static int faultfs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path;
    if (fi->fh == CONTROL_FH)
        return 0;
    int rc = fault(TOUCH_SYNC);
    if (rc != 0)
        return rc;
    rc = datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh);
    return rc == 0 ? 0 : fail_errno();
}

static int faultfs_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path;
    int rc = fault(TOUCH_SYNC);
    if (rc != 0)
        return rc;
    int fd = dirfd((DIR *)(uintptr_t)fi->fh);
    rc = datasync ? fdatasync(fd) : fsync(fd);
    return rc == 0 ? 0 : fail_errno();
}

static int faultfs_fallocate(const char *path, int how, off_t offset, off_t length,
                             struct fuse_file_info *fi)
{
    (void)path;
    if (fi->fh == CONTROL_FH)
        return -EOPNOTSUPP;
    int rc = fault(TOUCH_WRITE);
    if (rc != 0)
        return rc;
    return fallocate((int)fi->fh, how, offset, length) == 0 ? 0 : fail_errno();
}

static const struct fuse_operations operations = {
    .init = faultfs_init,
    .getattr = faultfs_getattr,
    .access = faultfs_access,
    .readlink = faultfs_readlink,
    .opendir = faultfs_opendir,
    .readdir = faultfs_readdir,
    .releasedir = faultfs_releasedir,
    .mknod = faultfs_mknod,
    .mkdir = faultfs_mkdir,
    .unlink = faultfs_unlink,
    .rmdir = faultfs_rmdir,
    .symlink = faultfs_symlink,
    .rename = faultfs_rename,
    .link = faultfs_link,
    .chmod = faultfs_chmod,
    .chown = faultfs_chown,
    .truncate = faultfs_truncate,
    .utimens = faultfs_utimens,
    .create = faultfs_create,
    .open = faultfs_open,
    .read = faultfs_read,
    .write = faultfs_write,
    .statfs = faultfs_statfs,
    .flush = faultfs_flush,
    .release = faultfs_release,
    .fsync = faultfs_fsync,
    .fsyncdir = faultfs_fsyncdir,
    .fallocate = faultfs_fallocate,
};

/* --- command line ------------------------------------------------------------------------ */

/* Takes the first argument that is not an option as SOURCE_DIR; the rest goes to libfuse. */
static int take_source(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    (void)data;
    (void)outargs;
    if (key == FUSE_OPT_KEY_NONOPT && source_path == NULL) {
        source_path = realpath(arg, NULL);
        if (source_path == NULL) {
            fprintf(stderr, "esrt-faultfs: source directory %s: %s\n", arg, strerror(errno));
            exit(2);
        }
        return 0;
    }
    return 1;
}

int main(int argc, char *argv[])
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    if (fuse_opt_parse(&args, NULL, NULL, take_source) != 0)
        return 2;
    if (source_path == NULL) {
        fprintf(stderr, "usage: esrt-faultfs [-f] [-o OPTIONS] SOURCE_DIR MOUNTPOINT\n"
                        "then write ok, eio, eio-writes or \"slow MS\" to "
                        "MOUNTPOINT/" CONTROL_NAME "\n");
        return 2;
    }
    source_fd = open(source_path, O_RDONLY | O_DIRECTORY);
    if (source_fd < 0) {
        fprintf(stderr, "esrt-faultfs: source directory %s: %s\n", source_path,
                strerror(errno));
        return 2;
    }
    /* The mount's name in /proc/mounts says what it mirrors (unless a comma in the path
     * would split the option). */
    char option[PATH_MAX + 64];
    snprintf(option, sizeof option, "-ofsname=esrt-faultfs:%s,subtype=esrt-faultfs",
             strchr(source_path, ',') == NULL ? source_path : "");
    fuse_opt_add_arg(&args, option);
#if FUSE_MAJOR_VERSION == 3 && FUSE_MINOR_VERSION >= 12
    /* Up to 3.14, fuse_main's unset default prints "Ignoring invalid max threads value";
     * and each slowed operation holds a thread while it sleeps. */
    fuse_opt_add_arg(&args, "-omax_threads=64");
#endif
    int rc = fuse_main(args.argc, args.argv, &operations, NULL);
    fuse_opt_free_args(&args);
    return rc;
}
