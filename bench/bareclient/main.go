// Command bareclient is the practical limit mdmctl is measured against: the
// same batched enqueue requests over keep-alive connections, with nothing
// else (no validation, guard, output or accounting).
//
//	seq -f 'DEV%05g' 10000 | go run ./bench/bareclient -server URL -key KEY
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/google/uuid"
)

func main() {
	server := flag.String("server", "", "NanoMDM URL")
	key := flag.String("key", "", "API key")
	concurrency := flag.Int("concurrency", 8, "requests in flight")
	flag.Parse()

	// Batches as mdmctl makes them: up to 1000 IDs or 7000 bytes of path.
	batches := make(chan []string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		var batch []string
		size := 0
		for sc.Scan() {
			id := strings.TrimSpace(sc.Text())
			if id == "" {
				continue
			}
			if len(batch) == 1000 || size+len(id)+1 > 7000 {
				batches <- batch
				batch, size = nil, 0
			}
			batch = append(batch, id)
			size += len(id) + 1
		}
		if len(batch) > 0 {
			batches <- batch
		}
		close(batches)
	}()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *concurrency}}
	var wg sync.WaitGroup
	failed := 0
	var mu sync.Mutex
	for range *concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>DeviceLock</string></dict><key>CommandUUID</key><string>%s</string></dict></plist>`,
					strings.ToUpper(uuid.NewString()))
				req, _ := http.NewRequest(http.MethodPut, *server+"/v1/enqueue/"+strings.Join(b, ",")+"?nopush=1", bytes.NewBufferString(body))
				req.SetBasicAuth("nanomdm", *key)
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					mu.Lock()
					failed += len(b)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "bareclient: %d devices failed\n", failed)
		os.Exit(1)
	}
}
