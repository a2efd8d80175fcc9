package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/grid"
)

type progressKind int

const (
	progressNone progressKind = iota
	progressLines
	progressBars
)

func progressMode(s string, w io.Writer) (progressKind, error) {
	switch s {
	case "none":
		return progressNone, nil
	case "lines":
		return progressLines, nil
	case "bars":
		return progressBars, nil
	case "auto":
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				return progressBars, nil
			}
		}
		return progressLines, nil
	}
	return 0, fmt.Errorf("--progress %q: use auto, bars, lines or none", s)
}

// watchProgress shows a job's progress until it ends: one bar per stage on
// a terminal, or a line per stage change (at most every two seconds)
// otherwise, so that logs of long jobs stay readable.
func watchProgress(j *grid.Job, mode progressKind, w io.Writer) {
	switch mode {
	case progressBars:
		watchBars(j, w)
	case progressLines:
		watchLines(j, w)
	default:
		<-j.Done()
	}
}

func watchBars(j *grid.Job, w io.Writer) {
	p := mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond))
	bars := map[int]*mpb.Bar{}
	update := func(pr api.Progress) {
		for _, s := range pr.Stages {
			b, ok := bars[s.ID]
			if !ok {
				name := fmt.Sprintf("stage %d %-12s", s.ID, s.Name)
				b = p.AddBar(int64(s.Tasks),
					mpb.PrependDecorators(decor.Name(name), decor.CountersNoUnit(" %d/%d tasks")),
					mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace)))
				bars[s.ID] = b
			}
			b.SetCurrent(int64(s.Done))
		}
	}
	for {
		select {
		case pr := <-j.Progress():
			update(pr)
		case <-j.Done():
			select {
			case pr := <-j.Progress():
				update(pr)
			default:
			}
			for _, b := range bars {
				if !b.Completed() {
					b.Abort(false)
				}
			}
			p.Wait()
			return
		}
	}
}

func watchLines(j *grid.Job, w io.Writer) {
	last := map[int]int{}
	var lastPrint time.Time
	show := func(pr api.Progress, force bool) {
		changed := false
		for _, s := range pr.Stages {
			if last[s.ID] != s.Done && (s.Done == s.Tasks || force || time.Since(lastPrint) > 2*time.Second) {
				changed = true
			}
		}
		if !changed {
			return
		}
		for _, s := range pr.Stages {
			if last[s.ID] != s.Done {
				fmt.Fprintf(w, "[%6.1fs] stage %d (%s): %d/%d tasks done, %d running\n", pr.Elapsed.Seconds(), s.ID, s.Name, s.Done, s.Tasks, s.Running)
				last[s.ID] = s.Done
			}
		}
		lastPrint = time.Now()
	}
	for {
		select {
		case pr := <-j.Progress():
			show(pr, false)
		case <-j.Done():
			select {
			case pr := <-j.Progress():
				show(pr, true)
			default:
			}
			return
		}
	}
}
