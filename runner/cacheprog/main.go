// Command cacheprog is a small GOCACHEPROG program (Go 1.24+; cmd/go/internal/cacheprog) that backs
// the go command's build cache with a shared directory, e.g. a bind mount that several containers see.
//
// Usage: GOCACHEPROG=/opt/gcm/cacheprog with GCM_CACHEPROG_DIR=/remote (or: GOCACHEPROG="cacheprog -dir /remote")
//
//	-dir    shared directory ($GCM_CACHEPROG_DIR; required)
//	-local  this machine's copy, where DiskPath points ($GCM_CACHEPROG_LOCAL; default $TMPDIR/gcm-cacheprog)
//	-stats  append this process's counters as one JSON line to this file on close ($GCM_CACHEPROG_STATS;
//	        default: write <dir>/stats-<hostname>-<pid>.json)
//
// Protocol: the go command writes JSON requests to stdin, one a line; a "put" with BodySize > 0 is
// followed by a line holding the body as a base64 JSON string. The program answers on stdout: first,
// unasked, {"ID":0,"KnownCommands":["get","put","close"]}, then one response per request (same ID).
//
// Layout, the same in both directories: a/<xx>/<action id hex> holds {"OutputID","Size","Time"} of
// an entry, o/<xx>/<output id hex> its body. Every file is written to a temporary name and renamed,
// a body before the metadata that names it, so a reader never sees a half-written entry.
//
// "get" looks in the local copy, then in the shared directory (copying the entry to the local copy:
// DiskPath must be a local file the go command can read); "put" writes both.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

type request struct {
	ID       int64
	Command  string
	ActionID []byte `json:",omitempty"`
	OutputID []byte `json:",omitempty"`
	BodySize int64  `json:",omitempty"`
}

type response struct {
	ID            int64
	Err           string     `json:",omitempty"`
	KnownCommands []string   `json:",omitempty"`
	Miss          bool       `json:",omitempty"`
	OutputID      []byte     `json:",omitempty"`
	Size          int64      `json:",omitempty"`
	Time          *time.Time `json:",omitempty"`
	DiskPath      string     `json:",omitempty"`
}

type meta struct {
	OutputID string    `json:"OutputID"`
	Size     int64     `json:"Size"`
	Time     time.Time `json:"Time"`
}

type stats struct {
	PID          int      `json:"pid"`
	Host         string   `json:"host"`
	Dir          string   `json:"dir"`
	Local        string   `json:"local"`
	Gets         int      `json:"gets"`
	HitsLocal    int      `json:"hits_local"`
	HitsShared   int      `json:"hits_shared"`
	Misses       int      `json:"misses"`
	Puts         int      `json:"puts"`
	PutBytes     int64    `json:"put_bytes"`
	SharedBytes  int64    `json:"shared_bytes_written"`
	Errors       int      `json:"errors"`
	FirstError   string   `json:"first_error,omitempty"`
	Closed       bool     `json:"closed"`
	KnownCommand []string `json:"known_commands"`
}

type cache struct {
	shared, local string
	st            stats
}

func main() {
	dir := flag.String("dir", os.Getenv("GCM_CACHEPROG_DIR"), "shared cache directory")
	local := flag.String("local", os.Getenv("GCM_CACHEPROG_LOCAL"), "local copy (DiskPath)")
	statsFile := flag.String("stats", os.Getenv("GCM_CACHEPROG_STATS"), "append counters here on close")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "cacheprog: no shared directory: set GCM_CACHEPROG_DIR or pass -dir")
		os.Exit(2)
	}
	if *local == "" {
		*local = filepath.Join(os.TempDir(), "gcm-cacheprog")
	}
	host, _ := os.Hostname()
	c := &cache{shared: *dir, local: *local}
	c.st = stats{PID: os.Getpid(), Host: host, Dir: *dir, Local: *local, KnownCommand: []string{"get", "put", "close"}}
	for _, d := range []string{c.shared, c.local} {
		if err := os.MkdirAll(d, 0o777); err != nil {
			fmt.Fprintf(os.Stderr, "cacheprog: %v\n", err)
			os.Exit(1)
		}
	}

	in := json.NewDecoder(bufio.NewReaderSize(os.Stdin, 1<<20))
	bw := bufio.NewWriter(os.Stdout)
	out := json.NewEncoder(bw)
	send := func(r *response) {
		if err := out.Encode(r); err == nil {
			_ = bw.Flush()
		}
	}
	send(&response{ID: 0, KnownCommands: c.st.KnownCommand})
	for {
		var req request
		if err := in.Decode(&req); err != nil {
			if !errors.Is(err, io.EOF) {
				c.fail(fmt.Errorf("reading a request: %w", err))
			}
			break // stdin closed without "close": the go command is gone
		}
		var body []byte
		if req.Command == "put" && req.BodySize > 0 {
			if err := in.Decode(&body); err != nil { // a JSON string of base64: encoding/json decodes it into []byte
				c.fail(fmt.Errorf("reading the body of request %d: %w", req.ID, err))
				send(&response{ID: req.ID, Err: err.Error()})
				break
			}
		}
		switch req.Command {
		case "get":
			send(c.get(&req))
		case "put":
			send(c.put(&req, body))
		case "close":
			c.st.Closed = true
			c.writeStats(*statsFile)
			send(&response{ID: req.ID})
			os.Exit(0)
		default:
			send(&response{ID: req.ID, Err: fmt.Sprintf("unknown command %q", req.Command)})
		}
	}
	c.writeStats(*statsFile)
}

func (c *cache) fail(err error) {
	c.st.Errors++
	if c.st.FirstError == "" {
		c.st.FirstError = err.Error()
	}
	fmt.Fprintf(os.Stderr, "cacheprog: %v\n", err)
}

func entryPaths(root string, action, output string) (string, string) {
	a := filepath.Join(root, "a", action[:2], action)
	if output == "" {
		return a, ""
	}
	return a, filepath.Join(root, "o", output[:2], output)
}

func readMeta(path string) (*meta, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m meta
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(m.OutputID) != 2*sha256.Size {
		return nil, fmt.Errorf("%s: bad OutputID %q", path, m.OutputID)
	}
	return &m, nil
}

// lookup finds a complete entry (metadata and a body of the recorded size) under root.
func lookup(root, action string) (*meta, string, error) {
	aPath, _ := entryPaths(root, action, "")
	m, err := readMeta(aPath)
	if err != nil {
		return nil, "", err
	}
	_, oPath := entryPaths(root, action, m.OutputID)
	fi, err := os.Stat(oPath)
	if err != nil {
		return nil, "", err
	}
	if fi.Size() != m.Size {
		return nil, "", fmt.Errorf("%s: %d bytes, the entry says %d", oPath, fi.Size(), m.Size)
	}
	return m, oPath, nil
}

func (c *cache) get(req *request) *response {
	c.st.Gets++
	if len(req.ActionID) == 0 {
		return &response{ID: req.ID, Err: "get without ActionID"}
	}
	action := hex.EncodeToString(req.ActionID)
	m, diskPath, err := lookup(c.local, action)
	if err == nil {
		c.st.HitsLocal++
		return hit(req.ID, m, diskPath)
	}
	m, sharedPath, err := lookup(c.shared, action)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			c.fail(err)
		}
		c.st.Misses++
		return &response{ID: req.ID, Miss: true}
	}
	body, err := os.ReadFile(sharedPath)
	if err == nil {
		diskPath, err = c.store(c.local, action, m, body)
	}
	if err != nil {
		c.fail(err)
		c.st.Misses++
		return &response{ID: req.ID, Miss: true}
	}
	c.st.HitsShared++
	return hit(req.ID, m, diskPath)
}

func hit(id int64, m *meta, diskPath string) *response {
	out, _ := hex.DecodeString(m.OutputID)
	t := m.Time
	return &response{ID: id, OutputID: out, Size: m.Size, Time: &t, DiskPath: diskPath}
}

func (c *cache) put(req *request, body []byte) *response {
	c.st.Puts++
	if len(req.ActionID) == 0 || len(req.OutputID) == 0 {
		return &response{ID: req.ID, Err: "put without ActionID or OutputID"}
	}
	if int64(len(body)) != req.BodySize {
		err := fmt.Errorf("put %d: body of %d bytes, BodySize %d", req.ID, len(body), req.BodySize)
		c.fail(err)
		return &response{ID: req.ID, Err: err.Error()}
	}
	c.st.PutBytes += int64(len(body))
	action := hex.EncodeToString(req.ActionID)
	m := &meta{OutputID: hex.EncodeToString(req.OutputID), Size: int64(len(body)), Time: time.Now().UTC()}
	diskPath, err := c.store(c.local, action, m, body)
	if err != nil {
		c.fail(err)
		return &response{ID: req.ID, Err: err.Error()}
	}
	if _, err := c.store(c.shared, action, m, body); err != nil {
		c.fail(err) // the local copy serves this build; the shared directory just misses this entry
	}
	return &response{ID: req.ID, DiskPath: diskPath}
}

// store writes the body (unless an identical-size one is there) and then the metadata under root.
func (c *cache) store(root, action string, m *meta, body []byte) (string, error) {
	aPath, oPath := entryPaths(root, action, m.OutputID)
	if fi, err := os.Stat(oPath); err != nil || fi.Size() != m.Size {
		if err := writeAtomic(oPath, body); err != nil {
			return "", err
		}
		if root == c.shared {
			c.st.SharedBytes += int64(len(body))
		}
	}
	data, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	if err := writeAtomic(aPath, data); err != nil {
		return "", err
	}
	return oPath, nil
}

func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

func (c *cache) writeStats(file string) {
	data, err := json.Marshal(c.st)
	if err != nil {
		return
	}
	if file == "" {
		if err := writeAtomic(filepath.Join(c.shared, fmt.Sprintf("stats-%s-%d.json", c.st.Host, c.st.PID)), data); err != nil {
			fmt.Fprintf(os.Stderr, "cacheprog: writing stats: %v\n", err)
		}
		return
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err == nil {
		_, err = f.Write(append(data, '\n'))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cacheprog: writing stats: %v\n", err)
	}
}
