package config

import (
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"maunium.net/go/mautrix/crypto/utils"
)

// recoveryKeyFile checks the recovery key file without ever printing it:
// absent (the bot writes it on first start, so its folder must exist), or
// a regular file only its owner can read, holding a recovery key.
func (v *validator) recoveryKeyFile(key, path string) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if dir, err := os.Stat(filepath.Dir(path)); err != nil || !dir.IsDir() {
			v.add(key, path, "neither the file nor its folder exists: the bot writes the recovery key there on its first start")
		}
		return
	} else if err != nil {
		v.add(key, path, "cannot read the file: "+pathReason(err))
		return
	}
	if info.Mode().Perm()&0o077 != 0 {
		v.add(key, path, "other users can read it (mode "+info.Mode().Perm().String()+"): it unlocks the bot's identity; chmod 600")
		return
	}
	data, err := readSecretFile(path)
	if err != nil {
		v.add(key, path, "cannot read the file: "+err.Error())
		return
	}
	if text := strings.TrimSpace(string(data)); text != "" && utils.DecodeBase58RecoveryKey(text) == nil {
		v.add(key, path, "does not hold a recovery key (48 base58 characters in groups of four)")
	}
}

// ReadRecoveryKey returns the recovery key stored at path ("" when the
// file does not exist or is empty).
func ReadRecoveryKey(path string) (string, error) {
	data, err := readSecretFile(path)
	if err != nil {
		if _, statErr := os.Stat(path); errors.Is(statErr, fs.ErrNotExist) {
			return "", nil
		}
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}

// WriteRecoveryKey stores a new recovery key at path, readable by its
// owner only, replacing the file whole or not at all.
func WriteRecoveryKey(path, key string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".recovery-key-*")
	if err != nil {
		return errors.New("create the recovery key file: " + pathReason(err))
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(key + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return errors.New("store the recovery key: " + pathReason(err))
	}
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		_ = dir.Sync()
		dir.Close()
	}
	return nil
}

// validEd25519 reports whether s is an Ed25519 public key as Matrix
// writes them: unpadded standard base64 of 32 bytes.
func validEd25519(s string) bool {
	b, err := base64.RawStdEncoding.DecodeString(s)
	return err == nil && len(b) == 32
}
