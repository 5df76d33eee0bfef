/* edgesdk emulated phone: run Arm programs through qemu-user, the way binfmt_misc would.
 *
 * Preloaded (LD_PRELOAD) into the emulated phone's shell. Every exec of a file is checked: an
 * ELF for AArch64 or 32-bit Arm is started as `qemu-<arch> [options] -0 argv0 -U LD_PRELOAD
 * path args...` instead, with the qemu command taken from $EDGESDK_QEMU_AARCH64 / _ARM
 * (space-separated). Everything else is exec'd unchanged. This machine has no binfmt_misc, so
 * without this `./edge-run` in the phone's shell would fail with "Exec format error".
 *
 * glibc's execvp/execv call its internal execve directly, so each entry point is wrapped. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef int (*execve_fn)(const char *, char *const[], char *const[]);

extern char **environ;

static execve_fn real_execve(void) {
  static execve_fn fn;
  if (!fn) fn = (execve_fn)dlsym(RTLD_NEXT, "execve");
  return fn;
}

/* e_machine of an ELF file, or -1 when it is not one we can read. */
static int elf_machine(const char *path) {
  unsigned char header[20];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t got = read(fd, header, sizeof header);
  close(fd);
  if (got != (ssize_t)sizeof header || memcmp(header, ELFMAG, SELFMAG) != 0) return -1;
  if (header[EI_DATA] == ELFDATA2LSB) return header[18] | (header[19] << 8);
  return (header[18] << 8) | header[19];
}

static const char *qemu_for(int machine) {
  if (machine == EM_AARCH64) return getenv("EDGESDK_QEMU_AARCH64");
  if (machine == EM_ARM) return getenv("EDGESDK_QEMU_ARM");
  return NULL;
}

/* Exec `path` through qemu when it is a foreign ELF; otherwise the real execve. */
static int shim_execve(const char *path, char *const argv[], char *const envp[]) {
  const char *qemu = qemu_for(elf_machine(path));
  if (!qemu || !*qemu) return real_execve()(path, argv, envp);

  size_t argc = 0;
  while (argv && argv[argc]) argc++;
  char *words = strdup(qemu);
  if (!words) { errno = ENOMEM; return -1; }
  size_t nwords = 0;
  char *prefix[32];
  for (char *save = NULL, *tok = strtok_r(words, " ", &save); tok && nwords < 32;
       tok = strtok_r(NULL, " ", &save))
    prefix[nwords++] = tok;
  if (nwords == 0) { free(words); return real_execve()(path, argv, envp); }

  /* prefix..., -0 argv0, -U LD_PRELOAD (the Arm program must not load our x86 library), path,
   * argv[1..] */
  char **args = calloc(nwords + 5 + argc + 1, sizeof *args);
  if (!args) { free(words); errno = ENOMEM; return -1; }
  size_t n = 0;
  for (size_t i = 0; i < nwords; i++) args[n++] = prefix[i];
  args[n++] = "-0";
  args[n++] = (char *)(argc ? argv[0] : path);
  args[n++] = "-U";
  args[n++] = "LD_PRELOAD";
  args[n++] = (char *)path;
  for (size_t i = 1; i < argc; i++) args[n++] = argv[i];
  args[n] = NULL;
  int rc = real_execve()(prefix[0], args, envp);
  int saved = errno;
  free(args);
  free(words);
  errno = saved;
  return rc;
}

int execve(const char *path, char *const argv[], char *const envp[]) {
  return shim_execve(path, argv, envp);
}

int execv(const char *path, char *const argv[]) { return shim_execve(path, argv, environ); }

/* PATH search as execvp does it; ENOEXEC (a script without #!) is left to the real execvpe. */
static int search_exec(const char *file, char *const argv[], char *const envp[]) {
  if (!file || !*file) { errno = ENOENT; return -1; }
  if (strchr(file, '/')) return shim_execve(file, argv, envp);
  const char *path = getenv("PATH");
  if (!path) path = "/usr/local/bin:/usr/bin:/bin";
  int saw_eacces = 0;
  for (const char *p = path;; p++) {
    const char *end = strchr(p, ':');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char full[PATH_MAX];
    if (len + 1 + strlen(file) + 1 <= sizeof full) {
      memcpy(full, p, len);
      size_t at = len;
      if (at == 0) full[at++] = '.';
      full[at++] = '/';
      strcpy(full + at, file);
      if (access(full, X_OK) == 0) {
        struct stat st;
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
          shim_execve(full, argv, envp);
          if (errno != ENOEXEC) return -1;
          typedef int (*execvpe_fn)(const char *, char *const[], char *const[]);
          execvpe_fn real = (execvpe_fn)dlsym(RTLD_NEXT, "execvpe");
          return real(full, argv, envp);
        }
      } else if (errno == EACCES) {
        saw_eacces = 1;
      }
    }
    if (!end) break;
    p = end;
  }
  errno = saw_eacces ? EACCES : ENOENT;
  return -1;
}

int execvp(const char *file, char *const argv[]) { return search_exec(file, argv, environ); }

int execvpe(const char *file, char *const argv[], char *const envp[]) {
  return search_exec(file, argv, envp);
}
