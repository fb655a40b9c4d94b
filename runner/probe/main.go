// Command probe runs inside a cell's container. It executes the steps of a job file in order and
// writes one JSON result, so every timing is measured in the container (no engine round-trips).
//
// Usage: probe JOB.json RESULT.json
//
//	probe --preflight   print {"machine", "spin_sec"} as JSON: the emulation preflight runs this in a
//	                    one-shot container (uname -m as the container sees it, and a fixed CPU workload
//	                    whose time, divided by the native time, estimates the emulation factor)
//
// Step kinds:
//
//	exec      run argv (env, dir, uid/gid, umask, timeout); record exit code, wall time, output, the
//	          rusage of the process and its waited-for children (CPU time, peak RSS) and, with
//	          count_compiled, the package lines `go build -v` prints on stderr
//	copytree  copy path -> dest keeping modes and mtimes; a symlink stays a symlink unless
//	          `deref_outside` is set and it points outside path: then its target is copied in its
//	          place (a distro GOROOT such as Debian's /usr/lib/go-1.23 links src to
//	          ../../share/go-1.23/src, which a copy of the GOROOT alone would leave dangling)
//	touch     set the mtime of every regular file below path to now
//	edit      append `data` to the file at path
//	read      record the content of the file at path
//	du        record size and file count below path
//	rmtree    remove path and everything below it
//	write     write `data` to the file at path (created or truncated)
//	age       set the mtime of every regular file below path to `days` days ago
//	statfs    record the type of the filesystem holding path (ext4, xfs, btrfs, tmpfs, overlay, ...)
//	flock     take an exclusive flock(2) on path, then ask a second process for it: does it block?
//	flock-contend
//	          `procs` processes at once each take LOCK_EX on path `rounds` times (blocking, as Go's
//	          lockedfile does), hold it `hold_ms` and let go: every wait in milliseconds and every failure
//	parallel  run the exec steps in `steps` at the same time
//	zipedit   rewrite the zip at path to dest with `data` appended to the first member whose name ends
//	          with `member`: a valid archive whose content no longer matches a recorded hash
//
// Every step may list `measure` directories whose size is recorded before and after it.
package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

const probeVersion = 1
const maxOutput = 64 << 10

type Step struct {
	Name          string            `json:"name"`
	Kind          string            `json:"kind"`
	Argv          []string          `json:"argv,omitempty"`
	Env           map[string]string `json:"env,omitempty"`
	Unset         []string          `json:"unset,omitempty"`
	Dir           string            `json:"dir,omitempty"`
	UID           *int              `json:"uid,omitempty"`
	GID           *int              `json:"gid,omitempty"`
	Umask         *int              `json:"umask,omitempty"`
	TimeoutSec    float64           `json:"timeout_sec,omitempty"`
	CountCompiled bool              `json:"count_compiled,omitempty"`
	Path          string            `json:"path,omitempty"`
	Dest          string            `json:"dest,omitempty"`
	Data          string            `json:"data,omitempty"`
	Measure       []string          `json:"measure,omitempty"`
	StopOnError   bool              `json:"stop_on_error,omitempty"`
	DerefOutside  bool              `json:"deref_outside,omitempty"`
	Days          float64           `json:"days,omitempty"`
	Member        string            `json:"member,omitempty"`
	Steps         []Step            `json:"steps,omitempty"`
	Procs         int               `json:"procs,omitempty"`
	Rounds        int               `json:"rounds,omitempty"`
	HoldMs        float64           `json:"hold_ms,omitempty"`
}

type Job struct {
	Steps []Step `json:"steps"`
}

type Usage struct {
	Exists bool  `json:"exists"`
	Bytes  int64 `json:"bytes"`
	Files  int64 `json:"files"`
}

type StepResult struct {
	Name     string           `json:"name"`
	Kind     string           `json:"kind"`
	Argv     []string         `json:"argv,omitempty"`
	OK       bool             `json:"ok"`
	ExitCode *int             `json:"exit_code,omitempty"`
	TimedOut bool             `json:"timed_out,omitempty"`
	Error    string           `json:"error,omitempty"`
	WallSec  float64          `json:"wall_sec"`
	Stdout   string           `json:"stdout,omitempty"`
	Stderr   string           `json:"stderr,omitempty"`
	Compiled []string         `json:"compiled,omitempty"`
	Count    *int64           `json:"count,omitempty"`
	Content  *string          `json:"content,omitempty"`
	Usage    *Usage           `json:"usage,omitempty"`
	Before   map[string]Usage `json:"before,omitempty"`
	After    map[string]Usage `json:"after,omitempty"`
	FSType   string           `json:"fs_type,omitempty"`
	Flock    *FlockResult     `json:"flock,omitempty"`
	Contend  *ContendResult   `json:"contend,omitempty"`
	Parallel []StepResult     `json:"parallel,omitempty"`
	Rusage   *Rusage          `json:"rusage,omitempty"`
}

// Rusage of an exec step's process as wait4(2) returns it: on Linux its own use plus that of every child it
// waited for (go build's compile and link), so CPU time is the whole build's and maxrss its largest process.
type Rusage struct {
	UserSec  float64 `json:"user_sec"`
	SysSec   float64 `json:"sys_sec"`
	MaxRSSKB int64   `json:"maxrss_kb"`
}

type FlockResult struct {
	SecondBlocked     bool   `json:"second_blocked"`
	AcquiredAfterFree bool   `json:"acquired_after_release"`
	Detail            string `json:"detail,omitempty"`
}

// ContendResult: what `procs` processes taking one flock(2) `rounds` times each saw. WaitsMs holds every
// acquisition's wait (from asking to holding); Failures counts attempts that returned an error (Errors: the
// first few words), and ProcFailures processes that did not report at all.
type ContendResult struct {
	Procs        int       `json:"procs"`
	Rounds       int       `json:"rounds"`
	HoldMs       float64   `json:"hold_ms"`
	Acquired     int       `json:"acquired"`
	Failures     int       `json:"failures"`
	ProcFailures int       `json:"proc_failures"`
	WaitsMs      []float64 `json:"waits_ms"`
	Errors       []string  `json:"errors,omitempty"`
}

// contendReport is what one --flock-contend process prints.
type contendReport struct {
	WaitsMs []float64 `json:"waits_ms"`
	Errors  []string  `json:"errors,omitempty"`
}

type Result struct {
	ProbeVersion int          `json:"probe_version"`
	Machine      string       `json:"machine"`
	Kernel       string       `json:"kernel"`
	UID          int          `json:"uid"`
	Started      string       `json:"started"`
	WallSec      float64      `json:"wall_sec"`
	Steps        []StepResult `json:"steps"`
	Completed    bool         `json:"completed"`
}

// A `go build -v` package line: an import path alone on its line.
var pkgLine = regexp.MustCompile(`^[A-Za-z0-9_.~+\-]+(/[A-Za-z0-9_.~+\-]+)*$`)

func clip(b []byte) string {
	if len(b) > maxOutput {
		return string(b[:maxOutput]) + "\n[... clipped by probe ...]"
	}
	return string(b)
}

func usage(path string) Usage {
	u := Usage{}
	if _, err := os.Lstat(path); err != nil {
		return u
	}
	u.Exists = true
	_ = filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				u.Bytes += info.Size()
				u.Files++
			}
		}
		return nil
	})
	return u
}

func environ(s Step) []string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for _, k := range s.Unset {
		delete(env, k)
	}
	for k, v := range s.Env {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// lookPath resolves argv[0] against the step's own PATH (exec.Command would use the probe's).
func lookPath(name string, env []string) string {
	if strings.Contains(name, "/") {
		return name
	}
	for _, kv := range env {
		if p, ok := strings.CutPrefix(kv, "PATH="); ok {
			for _, dir := range filepath.SplitList(p) {
				cand := filepath.Join(dir, name)
				if st, err := os.Stat(cand); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
					return cand
				}
			}
		}
	}
	return name
}

func runExec(s Step, r *StepResult) {
	if len(s.Argv) == 0 {
		r.Error = "exec step without argv"
		return
	}
	ctx := context.Background()
	if s.TimeoutSec > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(s.TimeoutSec*float64(time.Second)))
		defer cancel()
	}
	env := environ(s)
	cmd := exec.CommandContext(ctx, lookPath(s.Argv[0], env), s.Argv[1:]...)
	cmd.Env = env
	cmd.Dir = s.Dir
	cmd.Stdin = nil
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Own process group, so a timeout kills the whole build (go spawns compile/link children).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if s.UID != nil || s.GID != nil {
		cred := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid()), NoSetGroups: true}
		if s.UID != nil {
			cred.Uid = uint32(*s.UID)
		}
		if s.GID != nil {
			cred.Gid = uint32(*s.GID)
		}
		cmd.SysProcAttr.Credential = cred
	}
	if s.Umask != nil {
		old := syscall.Umask(*s.Umask)
		defer syscall.Umask(old)
	}
	start := time.Now()
	err := cmd.Run()
	r.WallSec = time.Since(start).Seconds()
	r.Stdout, r.Stderr = clip(stdout.Bytes()), clip(stderr.Bytes())
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.Rusage = &Rusage{UserSec: tvSec(ru.Utime), SysSec: tvSec(ru.Stime), MaxRSSKB: int64(ru.Maxrss)}
		}
	}
	if ctx.Err() == context.DeadlineExceeded {
		r.TimedOut = true
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		code := 0
		r.ExitCode = &code
		r.OK = true
	case errors.As(err, &exitErr):
		code := exitErr.ExitCode()
		r.ExitCode = &code
	default:
		r.Error = err.Error()
	}
	if s.CountCompiled {
		r.Compiled = []string{}
		for _, line := range strings.Split(stderr.String(), "\n") {
			if line = strings.TrimSpace(line); pkgLine.MatchString(line) {
				r.Compiled = append(r.Compiled, line)
			}
		}
	}
}

func zipEdit(src, dst, member, data string) error {
	zr, err := zip.OpenReader(src)
	if err != nil {
		return err
	}
	defer zr.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	edited := false
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			return err
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
		if !edited && strings.HasSuffix(f.Name, member) {
			body, edited = append(body, data...), true
		}
		w, err := zw.Create(f.Name)
		if err != nil {
			return err
		}
		if _, err := w.Write(body); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if !edited {
		return fmt.Errorf("no member of %s ends with %q", src, member)
	}
	return os.WriteFile(dst, buf.Bytes(), 0o644)
}

func tvSec(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

func copyFile(src, dst string, info fs.FileInfo) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func copyTree(src, dst string, derefOutside bool) (int64, error) {
	var n int64
	var dirs []string
	root := src
	if derefOutside {
		// Compare resolved paths: src itself may be reached through a link (/usr/lib/go -> go-1.23).
		if r, err := filepath.EvalSymlinks(src); err == nil {
			root, src = r, r // walk the real tree: WalkDir does not descend into a root that is a link
		}
	}
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			dirs = append(dirs, path)
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case d.Type()&fs.ModeSymlink != 0:
			if derefOutside {
				if resolved, outside := linksOutside(path, root); outside {
					m, err := copyTree(resolved, target, false)
					n += m
					return err
				}
			}
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			n++
			if err := copyFile(path, target, info); err != nil {
				return err
			}
			return os.Chtimes(target, info.ModTime(), info.ModTime())
		}
		return nil
	})
	// Directory modes and mtimes last: writing files into them changed both.
	for i := len(dirs) - 1; i >= 0 && err == nil; i-- {
		rel, _ := filepath.Rel(src, dirs[i])
		if info, e := os.Stat(dirs[i]); e == nil {
			target := filepath.Join(dst, rel)
			_ = os.Chmod(target, info.Mode().Perm())
			_ = os.Chtimes(target, info.ModTime(), info.ModTime())
		}
	}
	return n, err
}

// linksOutside resolves the symlink at path: (its target, true) when the target exists outside root.
// A dangling link is kept as a link (false): copying it as it is, is what the tree holds.
func linksOutside(path, root string) (string, bool) {
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", false
	}
	rel, err := filepath.Rel(root, resolved)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return resolved, true
	}
	return "", false
}

func touchTree(root string) (int64, error) {
	var n int64
	now := time.Now()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			n++
			return os.Chtimes(path, now, now)
		}
		return nil
	})
	return n, err
}

func runStep(s Step) StepResult {
	r := StepResult{Name: s.Name, Kind: s.Kind, Argv: s.Argv}
	if len(s.Measure) > 0 {
		r.Before = map[string]Usage{}
		for _, m := range s.Measure {
			r.Before[m] = usage(m)
		}
	}
	start := time.Now()
	var err error
	switch s.Kind {
	case "exec":
		runExec(s, &r)
	case "copytree":
		var n int64
		n, err = copyTree(s.Path, s.Dest, s.DerefOutside)
		r.Count = &n
	case "touch":
		var n int64
		n, err = touchTree(s.Path)
		r.Count = &n
	case "edit":
		var f *os.File
		if f, err = os.OpenFile(s.Path, os.O_WRONLY|os.O_APPEND, 0); err == nil {
			_, err = f.WriteString(s.Data)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
	case "read":
		var b []byte
		if b, err = os.ReadFile(s.Path); err == nil {
			c := clip(b)
			r.Content = &c
		}
	case "du":
		u := usage(s.Path)
		r.Usage = &u
	case "rmtree":
		err = os.RemoveAll(s.Path)
	case "write":
		err = os.WriteFile(s.Path, []byte(s.Data), 0o666)
	case "age":
		var n int64
		n, err = ageTree(s.Path, time.Duration(s.Days*24*float64(time.Hour)))
		r.Count = &n
	case "statfs":
		var st syscall.Statfs_t
		if err = syscall.Statfs(s.Path, &st); err == nil {
			r.FSType = fsName(int64(st.Type))
		}
	case "flock":
		r.Flock, err = flockTest(s.Path)
	case "flock-contend":
		r.Contend, err = flockContend(s.Path, s.Procs, s.Rounds, s.HoldMs)
	case "zipedit":
		err = zipEdit(s.Path, s.Dest, s.Member, s.Data)
	case "parallel":
		r.Parallel = make([]StepResult, len(s.Steps))
		var wg sync.WaitGroup
		for i, sub := range s.Steps {
			wg.Add(1)
			go func(i int, sub Step) {
				defer wg.Done()
				r.Parallel[i] = runStep(sub)
			}(i, sub)
		}
		wg.Wait()
		for _, p := range r.Parallel {
			if !p.OK {
				err = fmt.Errorf("parallel step %s failed", p.Name)
				break
			}
		}
	default:
		err = fmt.Errorf("unknown step kind %q", s.Kind)
	}
	if s.Kind != "exec" {
		r.WallSec = time.Since(start).Seconds()
		if err != nil {
			r.Error = err.Error()
		} else {
			r.OK = true
		}
	}
	if len(s.Measure) > 0 {
		r.After = map[string]Usage{}
		for _, m := range s.Measure {
			r.After[m] = usage(m)
		}
	}
	return r
}

func ageTree(root string, by time.Duration) (int64, error) {
	var n int64
	then := time.Now().Add(-by)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			n++
			return os.Chtimes(path, then, then)
		}
		return nil
	})
	return n, err
}

// Magic numbers from statfs(2).
var fsNames = map[int64]string{
	0xEF53: "ext4", 0x58465342: "xfs", 0x9123683E: "btrfs", 0x01021994: "tmpfs",
	0x794C7630: "overlay", 0x6969: "nfs", 0x65735546: "fuse", 0x2FC12FC1: "zfs", 0x9FA0: "proc",
}

func fsName(magic int64) string {
	if name, ok := fsNames[magic]; ok {
		return name
	}
	return fmt.Sprintf("0x%x", magic)
}

// flockTest holds LOCK_EX on path and runs a second process (this binary, --flock-try) that asks
// for the same lock without waiting; then releases it and asks again. Go's cache locks with flock.
func flockTest(path string) (*FlockResult, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("first flock: %w", err)
	}
	res := &FlockResult{}
	try := func() (int, string) {
		out, err := exec.Command("/proc/self/exe", "--flock-try", path).CombinedOutput()
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return exitErr.ExitCode(), strings.TrimSpace(string(out))
		}
		if err != nil {
			return -1, err.Error()
		}
		return 0, ""
	}
	code, detail := try()
	res.SecondBlocked = code == 3
	if code != 0 && code != 3 {
		res.Detail = fmt.Sprintf("second process: exit %d %s", code, detail)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_UN); err != nil {
		return res, fmt.Errorf("unlock: %w", err)
	}
	code, detail = try()
	res.AcquiredAfterFree = code == 0
	if code != 0 {
		res.Detail += fmt.Sprintf(" after release: exit %d %s", code, detail)
	}
	return res, nil
}

// flockContend starts procs copies of this binary (--flock-contend) at once on one lock file and gathers
// what each saw. An error is returned only when the test itself could not run.
func flockContend(path string, procs, rounds int, holdMs float64) (*ContendResult, error) {
	if procs < 2 || rounds < 1 {
		return nil, fmt.Errorf("flock-contend needs procs >= 2 and rounds >= 1, got %d and %d", procs, rounds)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, err
	}
	f.Close()
	res := &ContendResult{Procs: procs, Rounds: rounds, HoldMs: holdMs, WaitsMs: []float64{}}
	outs := make([]bytes.Buffer, procs)
	cmds := make([]*exec.Cmd, procs)
	for i := range cmds {
		cmds[i] = exec.Command("/proc/self/exe", "--flock-contend", path, fmt.Sprint(rounds), fmt.Sprint(holdMs))
		cmds[i].Stdout = &outs[i]
		if err := cmds[i].Start(); err != nil {
			res.ProcFailures++
			res.Errors = append(res.Errors, err.Error())
			cmds[i] = nil
		}
	}
	for i, c := range cmds {
		if c == nil {
			continue
		}
		werr := c.Wait()
		var rep contendReport
		if jerr := json.Unmarshal(outs[i].Bytes(), &rep); jerr != nil {
			res.ProcFailures++
			res.Errors = append(res.Errors, fmt.Sprintf("process %d: %v (output unreadable: %v)", i+1, werr, jerr))
			continue
		}
		res.WaitsMs = append(res.WaitsMs, rep.WaitsMs...)
		res.Acquired += len(rep.WaitsMs)
		res.Failures += len(rep.Errors)
		for _, e := range rep.Errors {
			if len(res.Errors) < 5 {
				res.Errors = append(res.Errors, e)
			}
		}
	}
	return res, nil
}

// flockContendChild takes LOCK_EX on path rounds times, holding it holdMs each time, and prints its report.
func flockContendChild(path string, rounds int, holdMs float64) int {
	rep := contendReport{WaitsMs: []float64{}}
	hold := time.Duration(holdMs * float64(time.Millisecond))
	for i := 0; i < rounds; i++ {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			rep.Errors = append(rep.Errors, err.Error())
			continue
		}
		t0 := time.Now()
		if err := flockRetry(int(f.Fd()), syscall.LOCK_EX); err != nil {
			rep.Errors = append(rep.Errors, "lock: "+err.Error())
			f.Close()
			continue
		}
		rep.WaitsMs = append(rep.WaitsMs, float64(time.Since(t0).Microseconds())/1000)
		time.Sleep(hold)
		if err := flockRetry(int(f.Fd()), syscall.LOCK_UN); err != nil {
			rep.Errors = append(rep.Errors, "unlock: "+err.Error())
		}
		f.Close()
	}
	b, _ := json.Marshal(rep)
	fmt.Println(string(b))
	return 0
}

// flockRetry is flock(2) retried on EINTR, as Go's lockedfile does (a signal is not a lock failure).
func flockRetry(fd int, how int) error {
	for {
		err := syscall.Flock(fd, how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

func flockTry(path string) int {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		fmt.Println(err)
		return 4
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return 3
		}
		fmt.Println(err)
		return 4
	}
	return 0
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// spin is a fixed mix of what a compiler does a lot of (allocation, maps, sorting, string building),
// so its emulated/native time ratio is a fair first estimate of a build's slowdown under QEMU.
func spin() float64 {
	start := time.Now()
	x := uint64(88172645463325252)
	for round := 0; round < 4; round++ {
		nums := make([]int, 400000)
		m := make(map[uint64]string, 50000)
		for i := range nums {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			nums[i] = int(x % 1000003)
			if i%8 == 0 {
				m[x%100000] = fmt.Sprint(i)
			}
		}
		sort.Ints(nums)
		var b strings.Builder
		for k, v := range m {
			b.WriteString(v)
			b.WriteByte(byte(k))
		}
		_ = b.Len()
	}
	return time.Since(start).Seconds()
}

func preflight() {
	var uts syscall.Utsname
	_ = syscall.Uname(&uts)
	out, _ := json.Marshal(map[string]any{"machine": utsString(uts.Machine[:]), "spin_sec": spin()})
	fmt.Println(string(out))
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--preflight" {
		preflight()
		return
	}
	if len(os.Args) == 5 && os.Args[1] == "--flock-contend" {
		var rounds int
		var holdMs float64
		if _, err := fmt.Sscan(os.Args[3], &rounds); err != nil {
			fmt.Fprintln(os.Stderr, "--flock-contend: rounds:", err)
			os.Exit(2)
		}
		if _, err := fmt.Sscan(os.Args[4], &holdMs); err != nil {
			fmt.Fprintln(os.Stderr, "--flock-contend: hold_ms:", err)
			os.Exit(2)
		}
		os.Exit(flockContendChild(os.Args[2], rounds, holdMs))
	}
	if len(os.Args) == 3 && os.Args[1] == "--flock-try" {
		os.Exit(flockTry(os.Args[2]))
	}
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: probe JOB.json RESULT.json")
		os.Exit(2)
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(2)
	}
	var job Job
	if err := json.Unmarshal(raw, &job); err != nil {
		fmt.Fprintln(os.Stderr, "probe: bad job:", err)
		os.Exit(2)
	}
	var uts syscall.Utsname
	_ = syscall.Uname(&uts)
	res := Result{
		ProbeVersion: probeVersion,
		Machine:      utsString(uts.Machine[:]),
		Kernel:       utsString(uts.Release[:]),
		UID:          os.Getuid(),
		Started:      time.Now().UTC().Format(time.RFC3339Nano),
		Steps:        []StepResult{},
	}
	start := time.Now()
	completed := true
	for _, s := range job.Steps {
		r := runStep(s)
		res.Steps = append(res.Steps, r)
		fmt.Printf("probe: step %-20s ok=%v %.2fs\n", s.Name, r.OK, r.WallSec)
		// Partial results survive a crash or a kill of a later step.
		res.WallSec = time.Since(start).Seconds()
		_ = writeJSON(os.Args[2], res)
		if !r.OK && s.StopOnError {
			completed = false
			break
		}
	}
	res.Completed = completed
	res.WallSec = time.Since(start).Seconds()
	if err := writeJSON(os.Args[2], res); err != nil {
		fmt.Fprintln(os.Stderr, "probe: cannot write result:", err)
		os.Exit(1)
	}
}

// utsString: Utsname fields are [65]int8 on amd64 and [65]uint8 on arm64.
func utsString[T int8 | uint8](a []T) string {
	b := make([]byte, 0, len(a))
	for _, c := range a {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}
