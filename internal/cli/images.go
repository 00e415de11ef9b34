package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/container"
	"github.com/runwayhq/runway/internal/driver/docker"
)

// releaseImage is one release of a service and its image on the engine.
type releaseImage struct {
	Release string `json:"release"`
	Version string `json:"version"`
	State   string `json:"state"`
	Image   string `json:"image"`
	// ID is the image's id on the engine, empty when it is not there.
	ID string `json:"id,omitempty"`
}

// maxImageReleases is how many of a service's newest releases images
// looks at.
const maxImageReleases = 100

func newImagesCmd(g *Globals) *cobra.Command {
	var env, file string
	cmd := &cobra.Command{
		Use:   "images [SERVICE] --env ENV",
		Short: "List the images of a service's releases on the environment's engine",
		Long: `Images lists the newest releases of a service (at most 100) with the image each
runs and whether the environment's container engine has it.`,
		Example: "  runway images web --env development\n  runway images prune web --env development --keep 5",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			list, eng, _, err := imagesOf(cmd.Context(), g, env, file, args)
			if err != nil {
				return err
			}
			eng.Close()
			return render(g, list, renderImages)
		},
	}
	cmd.Flags().StringVarP(&env, "env", "e", "", "environment of the engine (required)")
	cmd.Flags().StringVarP(&file, "file", "f", "", "service manifest (default: the one in the current directory)")
	cmd.AddCommand(newImagesPruneCmd(g))
	return cmd
}

func newImagesPruneCmd(g *Globals) *cobra.Command {
	var env, file string
	var keep int
	var yes bool
	cmd := &cobra.Command{
		Use:   "prune [SERVICE] --env ENV --keep N",
		Short: "Remove the service's images that none of its newest releases runs",
		Long: `Prune removes, from the environment's container engine, the images built for
the service (runway build labels them) that none of its newest --keep releases
runs, nor the release that serves now, so a rollback to any of those finds
its image.`,
		Example: "  runway images prune web --env development --keep 5 --yes",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keep < 1 {
				return UsageErrorf("--keep %d: keep the images of at least the newest release (--keep 1)", keep)
			}
			ctx := cmd.Context()
			list, eng, svc, err := imagesOf(ctx, g, env, file, args)
			if err != nil {
				return err
			}
			defer eng.Close()
			c, err := g.client()
			if err != nil {
				return err
			}
			st, err := c.Status(ctx, svc.Project, env, svc.Name)
			if err != nil {
				return err
			}
			pinned := map[string]bool{}
			for i, r := range list {
				if r.ID != "" && (i < keep || (st.Current != nil && st.Current.ID == r.Release)) {
					pinned[r.ID] = true
				}
			}
			imgs, err := eng.Images(ctx, map[string]string{"dev.runway.project": svc.Project, "dev.runway.service": svc.Name})
			if err != nil {
				return err
			}
			var victims []container.Image
			for _, img := range imgs {
				if !pinned[img.ID] {
					victims = append(victims, img)
				}
			}
			if len(victims) == 0 {
				fmt.Fprintln(g.Stdout, "nothing to prune")
				return nil
			}
			for _, v := range victims {
				fmt.Fprintf(g.Stdout, "remove %s %v\n", shortImageID(v.ID), v.Tags)
			}
			if !yes {
				ok, err := confirm(g, fmt.Sprintf("Remove %d image(s) of %s from the engine?", len(victims), svc.Name))
				if err != nil {
					return err
				}
				if !ok {
					return errors.New("prune cancelled")
				}
			}
			for _, v := range victims {
				for _, tag := range v.Tags {
					if err := eng.RemoveImage(ctx, tag); err != nil {
						return err
					}
				}
				if len(v.Tags) == 0 {
					if err := eng.RemoveImage(ctx, v.ID); err != nil {
						return err
					}
				}
			}
			fmt.Fprintf(g.Stdout, "removed %d image(s); kept %d pinned by the newest %d release(s) and the one serving\n", len(victims), len(pinned), keep)
			return nil
		},
	}
	cmd.Flags().StringVarP(&env, "env", "e", "", "environment of the engine (required)")
	cmd.Flags().StringVarP(&file, "file", "f", "", "service manifest (default: the one in the current directory)")
	cmd.Flags().IntVar(&keep, "keep", 5, "keep the images of this many newest releases (and of the one serving)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// imagesOf lists the service's newest releases and their images on the
// environment's engine, newest first; the engine stays open for the
// caller (closed on error).
func imagesOf(ctx context.Context, g *Globals, env, file string, args []string) ([]releaseImage, *container.Engine, *config.Service, error) {
	ws, svc, err := resolveService(g, args, file, env, "", false)
	if err != nil {
		return nil, nil, nil, err
	}
	name := svc.Name
	e := ws.Project.Environment(env)
	if e.Target != "docker" {
		return nil, nil, nil, fmt.Errorf("environment %q has target %s, which runs no images", env, e.Target)
	}
	host := ""
	if e.Docker != nil {
		host = e.Docker.Host
	}
	c, err := g.client()
	if err != nil {
		return nil, nil, nil, err
	}
	rels, err := c.Releases(ctx, apiwire.ReleaseFilter{Project: ws.Project.Name, Environment: env, Service: name, Limit: maxImageReleases})
	if err != nil {
		return nil, nil, nil, err
	}
	eng, err := container.Connect(ctx, host)
	if err != nil {
		return nil, nil, nil, err
	}
	out := []releaseImage{}
	for _, r := range rels {
		d, err := c.Release(ctx, r.ID)
		if err != nil {
			eng.Close()
			return nil, nil, nil, err
		}
		var spec config.Service
		if err := json.Unmarshal(d.Manifest, &spec); err != nil || spec.Image == "" {
			continue // not a release of images
		}
		ri := releaseImage{Release: r.ID, Version: r.Version, State: r.State, Image: docker.Image(&spec)}
		if img, err := eng.InspectImage(ctx, ri.Image); err == nil {
			ri.ID = img.ID
		} else if !errors.Is(err, container.ErrNotFound) {
			eng.Close()
			return nil, nil, nil, err
		}
		out = append(out, ri)
	}
	return out, eng, svc, nil
}

func renderImages(w io.Writer, list []releaseImage) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RELEASE\tVERSION\tSTATE\tIMAGE\tID")
	for _, r := range list {
		id := "(not on the engine)"
		if r.ID != "" {
			id = shortImageID(r.ID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Release, r.Version, r.State, r.Image, id)
	}
	return tw.Flush()
}

func shortImageID(id string) string {
	if len(id) > 19 {
		return id[:19]
	}
	return id
}
