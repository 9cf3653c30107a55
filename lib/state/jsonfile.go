package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ReadJSON decodes the file at path into v; found is false when there is no
// such file. what names the file's kind in the error of a damaged one.
func ReadJSON(path, what string, v any) (found bool, err error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("%s %s is damaged: %v", what, path, err)
	}
	return true, nil
}

// WriteJSON writes v as indented JSON with WriteFileAtomic, creating the
// directory with dirPerm when missing.
func WriteJSON(path string, v any, perm, dirPerm os.FileMode) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), dirPerm); err != nil {
		return err
	}
	return WriteFileAtomic(path, append(raw, '\n'), perm)
}

// RemoveFile removes path; a missing file is not an error.
func RemoveFile(path string) error {
	err := os.Remove(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
