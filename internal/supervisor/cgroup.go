package supervisor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/runwayhq/runway/internal/agentapi"
)

// cgroups creates one cgroup per instance, below the agent's own cgroup, to
// enforce Limits. When the machine does not let it, Enforce reports why and
// the group's state says "limits not enforced: <why>".
type cgroups struct {
	root  string // /sys/fs/cgroup, injectable for tests
	agent string // per-agent directory name
}

func (c cgroups) selfPaths() (v1 map[string]string, v2 string, err error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, "", err
	}
	v1 = map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			v2 = parts[2]
			continue
		}
		for _, ctl := range strings.Split(parts[1], ",") {
			v1[ctl] = parts[2]
		}
	}
	return v1, v2, nil
}

// create makes the cgroup of an instance and writes its limits; it returns
// the directories to put the process in, and a description.
func (c cgroups) create(instanceID string, l agentapi.Limits) ([]string, string, error) {
	v1, v2, err := c.selfPaths()
	if err != nil {
		return nil, "", err
	}
	// cgroup v1: memory and cpu hierarchies.
	if _, err := os.Stat(filepath.Join(c.root, "memory", "memory.limit_in_bytes")); err == nil {
		var dirs []string
		fail := func(err error) ([]string, string, error) {
			c.remove(dirs)
			return nil, "", err
		}
		if l.MemoryMB > 0 {
			d := filepath.Join(c.root, "memory", v1["memory"], c.agent, instanceID)
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fail(fmt.Errorf("create memory cgroup: %w", err))
			}
			dirs = append(dirs, d)
			if err := writeCg(d, "memory.limit_in_bytes", strconv.FormatInt(l.MemoryMB<<20, 10)); err != nil {
				return fail(err)
			}
		}
		if l.CPU > 0 {
			d := filepath.Join(c.root, "cpu", v1["cpu"], c.agent, instanceID)
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fail(fmt.Errorf("create cpu cgroup: %w", err))
			}
			dirs = append(dirs, d)
			if err := writeCg(d, "cpu.cfs_period_us", "100000"); err != nil {
				return fail(err)
			}
			if err := writeCg(d, "cpu.cfs_quota_us", strconv.Itoa(int(l.CPU*100000))); err != nil {
				return fail(err)
			}
		}
		return dirs, "enforced (cgroup v1)", nil
	}
	// cgroup v2: needs the controllers delegated to the agent's cgroup.
	if _, err := os.Stat(filepath.Join(c.root, "cgroup.controllers")); err == nil {
		base := filepath.Join(c.root, v2, c.agent)
		if err := os.MkdirAll(base, 0o755); err != nil {
			return nil, "", fmt.Errorf("create cgroup %s: %w", base, err)
		}
		if err := writeCg(filepath.Dir(base), "cgroup.subtree_control", "+memory +cpu"); err != nil {
			return nil, "", err
		}
		if err := writeCg(base, "cgroup.subtree_control", "+memory +cpu"); err != nil {
			return nil, "", err
		}
		d := filepath.Join(base, instanceID)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, "", fmt.Errorf("create cgroup %s: %w", d, err)
		}
		if l.MemoryMB > 0 {
			if err := writeCg(d, "memory.max", strconv.FormatInt(l.MemoryMB<<20, 10)); err != nil {
				c.remove([]string{d})
				return nil, "", err
			}
		}
		if l.CPU > 0 {
			if err := writeCg(d, "cpu.max", fmt.Sprintf("%d 100000", int(l.CPU*100000))); err != nil {
				c.remove([]string{d})
				return nil, "", err
			}
		}
		return []string{d}, "enforced (cgroup v2)", nil
	}
	return nil, "", errors.New("no cgroup v1 memory/cpu hierarchy or cgroup v2 mount under " + c.root)
}

// track creates the instance's own cgroup, used to find every process of
// the instance (a descendant that left its process group and cleared its
// environment included), not to limit it: a directory in the cgroup v1
// pids hierarchy, or in cgroup v2. It returns "" when neither is usable
// (the marker scan then finds descendants alone).
func (c cgroups) track(instanceID string) string {
	d := c.trackDir(instanceID)
	if d == "" {
		return ""
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		return ""
	}
	return d
}

// trackDir is where track puts the instance's cgroup ("" when nowhere).
func (c cgroups) trackDir(instanceID string) string {
	v1, v2, err := c.selfPaths()
	if err != nil {
		return ""
	}
	switch {
	case exists(filepath.Join(c.root, "pids", "cgroup.procs")):
		return filepath.Join(c.root, "pids", v1["pids"], c.agent, instanceID)
	case exists(filepath.Join(c.root, "cgroup.controllers")):
		return filepath.Join(c.root, v2, c.agent, instanceID)
	}
	return ""
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func writeCg(dir, file, val string) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(val), 0o644); err != nil {
		return fmt.Errorf("write %s to %s: %w", val, filepath.Join(dir, file), err)
	}
	return nil
}

// attach moves pid into the cgroups.
func (c cgroups) attach(dirs []string, pid int) error {
	for _, d := range dirs {
		if err := writeCg(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// remove deletes the cgroups of an instance once its processes are gone.
func (c cgroups) remove(dirs []string) {
	for _, d := range dirs {
		os.Remove(d)
	}
}

// removeAgentDirs deletes the per-agent cgroup directories once they are
// empty (rmdir fails harmlessly while instances still use them).
func (c cgroups) removeAgentDirs() {
	v1, v2, err := c.selfPaths()
	if err != nil {
		return
	}
	os.Remove(filepath.Join(c.root, "memory", v1["memory"], c.agent))
	os.Remove(filepath.Join(c.root, "cpu", v1["cpu"], c.agent))
	os.Remove(filepath.Join(c.root, "pids", v1["pids"], c.agent))
	os.Remove(filepath.Join(c.root, v2, c.agent))
}
