set terminal svg size 800,480 dynamic background rgb 'white'
set output '/tmp/wt/docs/bench/live-timeline.svg'
set title '1 GiB, 100 MB/s random writes over 512 MiB, multifd 2, 1 GiB/s cap'
set xlabel 'time since migrate (s)'
set ylabel 'MB/s'
set y2label 'remaining (MiB)'
set ytics nomirror
set y2tics
set grid
set yrange [0:*]
set y2range [0:*]
set key outside bottom center horizontal
plot '/tmp/wt/docs/bench/live-timeline.dat' using 1:2 with steps lw 2 title 'throughput', \
  '/tmp/wt/docs/bench/live-timeline.dat' using 1:4 with steps lw 2 title 'dirty rate', \
  '/tmp/wt/docs/bench/live-timeline.dat' using 1:5 with lines lw 2 title 'guest progress', \
  '/tmp/wt/docs/bench/live-timeline.dat' using 1:3 axes x1y2 with lines lw 2 dt 2 title 'remaining'
unset output
set terminal pngcairo size 800,480
set output '/tmp/wt/docs/bench/live-timeline.png'
set title '1 GiB, 100 MB/s random writes over 512 MiB, multifd 2, 1 GiB/s cap'
set xlabel 'time since migrate (s)'
set ylabel 'MB/s'
set y2label 'remaining (MiB)'
set ytics nomirror
set y2tics
set grid
set yrange [0:*]
set y2range [0:*]
set key outside bottom center horizontal
plot '/tmp/wt/docs/bench/live-timeline.dat' using 1:2 with steps lw 2 title 'throughput', \
  '/tmp/wt/docs/bench/live-timeline.dat' using 1:4 with steps lw 2 title 'dirty rate', \
  '/tmp/wt/docs/bench/live-timeline.dat' using 1:5 with lines lw 2 title 'guest progress', \
  '/tmp/wt/docs/bench/live-timeline.dat' using 1:3 axes x1y2 with lines lw 2 dt 2 title 'remaining'
unset output
