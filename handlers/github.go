package handlers

import "regexp"

// githubLogin is GitHub's rule for user names: alphanumerics and single
// hyphens, not at either end, at most 39 characters.
var githubLogin = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9]|-[A-Za-z0-9]){0,38}$`)
