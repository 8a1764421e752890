// Package agent is racklift's deploy agent (see doc in a later commit).
package agent
