set terminal svg size 800,480 dynamic background rgb 'white'
set output '/tmp/wt/docs/bench/random-throughput.svg'
set title '4 GiB random RAM, source stopped'
set xlabel 'multifd channels (0 = single stream)'
set ylabel 'GB/s (median, min-max)'
set grid ytics
set key outside top center horizontal
set xrange [-0.5:3.5]
set yrange [0:*]
plot '/tmp/wt/docs/bench/random-throughput.dat' index 0 using 1:2:3:4:xtic(5) with yerrorlines lw 2 pt 7 title 'anon', \
  '/tmp/wt/docs/bench/random-throughput.dat' index 1 using 1:2:3:4:xtic(5) with yerrorlines lw 2 pt 7 title 'thp', \
  '/tmp/wt/docs/bench/random-throughput.dat' index 2 using 1:2:3:4:xtic(5) with yerrorlines lw 2 pt 7 title 'prealloc'
unset output
set terminal pngcairo size 800,480
set output '/tmp/wt/docs/bench/random-throughput.png'
set title '4 GiB random RAM, source stopped'
set xlabel 'multifd channels (0 = single stream)'
set ylabel 'GB/s (median, min-max)'
set grid ytics
set key outside top center horizontal
set xrange [-0.5:3.5]
set yrange [0:*]
plot '/tmp/wt/docs/bench/random-throughput.dat' index 0 using 1:2:3:4:xtic(5) with yerrorlines lw 2 pt 7 title 'anon', \
  '/tmp/wt/docs/bench/random-throughput.dat' index 1 using 1:2:3:4:xtic(5) with yerrorlines lw 2 pt 7 title 'thp', \
  '/tmp/wt/docs/bench/random-throughput.dat' index 2 using 1:2:3:4:xtic(5) with yerrorlines lw 2 pt 7 title 'prealloc'
unset output
