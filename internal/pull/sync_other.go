//go:build !unix

package pull

func syncFilesystems() {}
