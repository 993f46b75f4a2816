package source

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ReadFile reads a file of at most MaxFileBytes, so that a huge file is refused without being read.
// Anything but a regular file (a named pipe, a device) is refused too: opening a pipe waits for a
// writer, forever.
func ReadFile(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if info.Size() > MaxFileBytes {
		return nil, fmt.Errorf("the file is %d bytes; the limit is %d", info.Size(), MaxFileBytes)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Read what Stat saw, then one byte more to notice a file that grew since.
	data := make([]byte, info.Size(), info.Size()+1)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, err
	}
	if n, _ := f.Read(make([]byte, 1)); n > 0 {
		return nil, fmt.Errorf("the file changed while it was read")
	}
	return data, nil
}

// PathError words a failure to open a path given on the command line for the user: "nope: no such
// file or folder" rather than "stat nope: no such file or directory".
func PathError(err error) error {
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		return err
	}
	if errors.Is(err, fs.ErrNotExist) {
		return &pathError{fmt.Sprintf("%s: no such file or folder", pe.Path), err}
	}
	return &pathError{fmt.Sprintf("%s: %v", pe.Path, pe.Err), err}
}

// pathError keeps the error it words, for errors.Is(err, fs.ErrNotExist).
type pathError struct {
	msg string
	err error
}

func (e *pathError) Error() string { return e.msg }
func (e *pathError) Unwrap() error { return e.err }
