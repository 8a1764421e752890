package tftp

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

// BenchmarkTFTP1MiB fetches a 1 MiB file over loopback with pin/tftp's
// client (blksize DefaultBlockSize, tsize), events counted by a recorder.
//
//   - clients=N: N fetches in flight all the time (RunParallel); ns/op is
//     wall time per fetch, MB/s is aggregate.
//   - burst=N: each op starts N fetches at once and waits for all, like N
//     machines PXE booting together; ns/op is the wall time of a burst.
//
// Run: go test -run '^$' -bench TFTP1MiB -benchtime 3x ./boot/tftp/
func BenchmarkTFTP1MiB(b *testing.B) {
	const size = 1 << 20
	const name = "52:54:00:12:34:56/1mib.bin"
	files := fstest.MapFS{"1mib.bin": {Data: pattern(size)}}

	for _, clients := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			rec := &countRecorder{}
			srv := startServer(b, &Server{Files: files, Rec: rec})
			b.SetBytes(size)
			b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := fetch(srv.addr, name, DefaultBlockSize, true)
					if err != nil {
						b.Error(err)
						return
					}
					if len(res.data) != size {
						b.Errorf("got %d bytes", len(res.data))
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fetches/s")
			if err := srv.stop(10 * time.Second); err != nil { // waits for the last hooks
				b.Fatal(err)
			}
			if got, want := rec.n.Load(), int64(2*b.N); got != want {
				b.Errorf("recorded %d events, want %d", got, want)
			}
		})
	}

	for _, burst := range []int{64, 512} {
		b.Run(fmt.Sprintf("burst=%d", burst), func(b *testing.B) {
			rec := &countRecorder{}
			srv := startServer(b, &Server{Files: files, Rec: rec})
			b.SetBytes(int64(burst) * size)
			for b.Loop() {
				var wg sync.WaitGroup
				errs := make(chan error, burst)
				for range burst {
					wg.Go(func() {
						res, err := fetch(srv.addr, name, DefaultBlockSize, true)
						if err == nil && len(res.data) != size {
							err = fmt.Errorf("got %d bytes", len(res.data))
						}
						if err != nil {
							errs <- err
						}
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					b.Error(err)
				}
			}
		})
	}
}
