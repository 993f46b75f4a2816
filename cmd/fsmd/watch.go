package main

import (
	"context"
	"maps"
	"os"
	"time"

	"github.com/fsmd-io/fsmd/internal/machine"
)

// defaultWatchEvery is how often `fsmd serve --watch` looks at the definitions folder.
const defaultWatchEvery = time.Second

// folderState is what the watcher sees of a definitions folder: each definition file's size and
// modification time (transition tables and testdata left out, as machine.Load leaves them), or
// why the folder cannot be read. Two equal states mean nothing changed.
type folderState struct {
	files map[string]fileStamp
	err   string
}

type fileStamp struct {
	size    int64
	modTime int64 // UnixNano
}

func (a folderState) equal(b folderState) bool {
	return a.err == b.err && maps.Equal(a.files, b.files)
}

// readFolderState reads the state of the definitions folder dir.
func readFolderState(dir string) folderState {
	files, err := machine.DefinitionFiles(dir)
	if err != nil {
		return folderState{err: err.Error()}
	}
	st := folderState{files: make(map[string]fileStamp, len(files))}
	for _, f := range files {
		info, err := os.Stat(f)
		if err != nil { // removed since it was listed: the next look sees it gone
			continue
		}
		st.files[f] = fileStamp{size: info.Size(), modTime: info.ModTime().UnixNano()}
	}
	return st
}

// watch polls the definitions folder dir every `every` until ctx ends, and calls reload when the
// folder differs from the state `loaded` (what the service loaded): a definition file added, removed
// or written. No file-system notifications (no dependency, and the same on every OS, on network file
// systems and in containers): a folder of YAML files is cheap to stat once a second.
func watch(ctx context.Context, dir string, every time.Duration, loaded folderState, reload func()) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	s := settle{last: loaded, prev: loaded}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if s.look(readFolderState(dir)) {
			reload()
		}
	}
}

// settle decides, look by look, when the watcher reloads: once two looks in a row agree on a state
// other than the one reloaded last, so that a file caught half-written is not registered. A state is
// reloaded once, whether the reload succeeds or not (a failed one is for the next edit to fix).
type settle struct {
	last folderState // the state reloaded last (at first, the one loaded at start)
	prev folderState // the state of the previous look
}

// look takes the folder's state now and reports whether to reload.
func (s *settle) look(cur folderState) bool {
	reload := !cur.equal(s.last) && cur.equal(s.prev)
	if reload {
		s.last = cur
	}
	s.prev = cur
	return reload
}
