package container

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/moby/moby/client"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// Build says what image to build and how to name it.
type Build struct {
	// Context is the directory sent to the engine.
	Context string
	// Dockerfile is the Dockerfile's path relative to Context ("Dockerfile"
	// when empty); it must lie inside Context.
	Dockerfile string
	// Args are the build arguments (ARG).
	Args map[string]string
	// Tags name the image; the first is how Build finds it afterwards.
	Tags []string
	// Labels are set on the image.
	Labels map[string]string
}

// BuildError is a build the engine refused or that failed in a step.
type BuildError struct {
	// Step is the failing step as the engine printed it ("2/3: RUN make"),
	// empty when the build failed before its first step.
	Step string
	// Message is the engine's error.
	Message string
}

func (e *BuildError) Error() string {
	if e.Step == "" {
		return "build failed: " + e.Message
	}
	return fmt.Sprintf("build failed at step %s: %s", e.Step, e.Message)
}

// stepLine matches the line a builder prints when a step starts: Docker's
// classic builder "Step 2/3 : RUN make", podman/buildah "STEP 2/3: RUN make".
var stepLine = regexp.MustCompile(`(?i)^step (\d+/\d+) ?: ?(.*)$`)

// Build sends the context to the engine, streams the build's output to out
// and returns the image's id. A failure is a *BuildError naming the step.
func (e *Engine) Build(ctx context.Context, b Build, out io.Writer) (string, error) {
	if len(b.Tags) == 0 {
		return "", errors.New("build: no tag to name the image")
	}
	dockerfile := b.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(WriteContext(pw, b.Context, dockerfile)) }()
	defer pr.Close()
	args := map[string]*string{}
	for k, v := range b.Args {
		args[k] = &v
	}
	res, err := e.api.ImageBuild(ctx, pr, client.ImageBuildOptions{
		Tags:        b.Tags,
		Dockerfile:  filepath.ToSlash(dockerfile),
		BuildArgs:   args,
		Labels:      b.Labels,
		Remove:      true,
		ForceRemove: true,
	})
	if err != nil {
		var ce *ContextError
		if errors.As(err, &ce) {
			return "", ce
		}
		return "", fmt.Errorf("build %s: %w", b.Tags[0], err)
	}
	defer res.Body.Close()
	if err := readBuildStream(res.Body, out); err != nil {
		return "", err
	}
	img, err := e.InspectImage(ctx, b.Tags[0])
	if err != nil {
		return "", fmt.Errorf("build %s: the engine reported success but: %w", b.Tags[0], err)
	}
	return img.ID, nil
}

// readBuildStream copies the build's JSON messages' text to out, tracking
// the current step, and returns the first error as a *BuildError.
func readBuildStream(r io.Reader, out io.Writer) error {
	var step string
	dec := json.NewDecoder(bufio.NewReader(r))
	var partial strings.Builder
	for {
		var m struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read build output: %w", err)
		}
		if m.Stream != "" {
			if out != nil {
				_, _ = io.WriteString(out, m.Stream)
			}
			// A message may hold several lines or part of one.
			partial.WriteString(m.Stream)
			text := partial.String()
			lines := strings.Split(text, "\n")
			partial.Reset()
			partial.WriteString(lines[len(lines)-1])
			for _, l := range lines[:len(lines)-1] {
				if s := stepLine.FindStringSubmatch(strings.TrimSpace(l)); s != nil {
					step = s[1] + ": " + s[2]
				}
			}
		}
		msg := strings.TrimSpace(m.Error)
		if m.ErrorDetail != nil && strings.TrimSpace(m.ErrorDetail.Message) != "" {
			msg = strings.TrimSpace(m.ErrorDetail.Message)
		}
		if msg != "" {
			if s := stepLine.FindStringSubmatch(strings.TrimSpace(partial.String())); s != nil {
				step = s[1] + ": " + s[2]
			}
			return &BuildError{Step: step, Message: msg}
		}
	}
}

// ContextError is a build context that cannot be sent: a missing
// directory, a Dockerfile outside it or missing, an unreadable file, a bad
// .dockerignore.
type ContextError struct {
	Path string
	Err  error
}

func (e *ContextError) Error() string { return fmt.Sprintf("build context %s: %v", e.Path, e.Err) }
func (e *ContextError) Unwrap() error { return e.Err }

// WriteContext writes dir as a tar stream to w, leaving out what
// dir/.dockerignore excludes (Docker's rules: patternmatcher, "!" to
// re-include), but always sending the Dockerfile and .dockerignore, as the
// Docker CLI does. Symlinks are sent as links; other special files are
// skipped.
func WriteContext(w io.Writer, dir, dockerfile string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return &ContextError{Path: dir, Err: err}
	}
	if !st.IsDir() {
		return &ContextError{Path: dir, Err: errors.New("not a directory")}
	}
	df := filepath.ToSlash(filepath.Clean(dockerfile))
	if filepath.IsAbs(dockerfile) || df == ".." || strings.HasPrefix(df, "../") {
		return &ContextError{Path: dir, Err: fmt.Errorf("dockerfile %s is outside the context", dockerfile)}
	}
	if _, err := os.Stat(filepath.Join(dir, df)); err != nil {
		return &ContextError{Path: dir, Err: fmt.Errorf("dockerfile: %w", err)}
	}
	var pm *patternmatcher.PatternMatcher
	if f, err := os.Open(filepath.Join(dir, ".dockerignore")); err == nil {
		patterns, err := ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return &ContextError{Path: filepath.Join(dir, ".dockerignore"), Err: err}
		}
		if pm, err = patternmatcher.New(patterns); err != nil {
			return &ContextError{Path: filepath.Join(dir, ".dockerignore"), Err: err}
		}
	}
	tw := tar.NewWriter(w)
	parents := map[string]patternmatcher.MatchInfo{}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if pm != nil && rel != df && rel != ".dockerignore" {
			parent := parents[filepath.ToSlash(filepath.Dir(rel))]
			excluded, info, err := pm.MatchesUsingParentResults(rel, parent)
			if err != nil {
				return err
			}
			if d.IsDir() {
				parents[rel] = info
				// A directory excluded with no "!" rule below it is skipped whole.
				if excluded && !pm.Exclusions() {
					return filepath.SkipDir
				}
			}
			if excluded {
				return nil
			}
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		} else if !info.Mode().IsRegular() && !info.IsDir() {
			return nil
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if info.IsDir() {
			hdr.Name += "/"
		}
		// Reproducible contexts: no owner names of this machine.
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		var ce *ContextError
		if errors.As(err, &ce) {
			return err
		}
		return &ContextError{Path: dir, Err: err}
	}
	return tw.Close()
}
