       >>SOURCE FORMAT IS FREE
*> A free-format program: code may start in column 1 and run past column 72.
identification division.
program-id. free-prog.
data division.
linkage section.
01 lk-order.   *> inline comment after the period
   05 lk-order-id          pic 9(8) comp-5.
   05 lk-customer-name-that-is-rather-long    pic x(40).
   05 lk-lines occurs 4 times.
      10 lk-sku            pic x(8).
      10 lk-price          pic s9(5)v99 comp-3.
      10 lk-qty            pic s9(4) comp.
   05 lk-total             pic s9(9)v99 sign is trailing separate.
01 lk-status pic x(2).
procedure division using lk-order lk-status.
    move "00" to lk-status
    goback.
