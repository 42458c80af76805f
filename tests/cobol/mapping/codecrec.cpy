      * One record with every representation the codec supports.
       01 CR-REC.
          05 CR-NAME       PIC X(12).
          05 CR-CODE       PIC A(4).
          05 CR-COUNT      PIC 9(10).
          05 CR-AMOUNT     PIC S9(7)V99.
          05 CR-LEAD       PIC S9(3)V9 SIGN LEADING.
          05 CR-LEADSEP    PIC S9(4) SIGN LEADING SEPARATE.
          05 CR-TRAILSEP   PIC S9(2)V99 SIGN TRAILING SEPARATE.
          05 CR-HUND       PIC S9(3)PP.
          05 CR-TINY       PIC PPP99.
          05 CR-B1         PIC S99 COMP.
          05 CR-B2         PIC 9(4) BINARY.
          05 CR-B4         PIC S9(7)V99 COMP-4.
          05 CR-B8         PIC S9(18) COMP.
          05 CR-N2         PIC S9(4) COMP-5.
          05 CR-N4         PIC 9(9) COMP-5.
          05 CR-N8         PIC S9(15)V999 COMP-5.
          05 CR-P1         PIC S9(7)V99 COMP-3.
          05 CR-P2         PIC 9(4) COMP-3.
          05 CR-P3         PIC S9(18) COMP-3.
          05 CR-F1         COMP-1.
          05 CR-F2         COMP-2.
          05 FILLER        PIC X(2).
          05 CR-ROWS OCCURS 2.
             10 CR-ID      PIC 9(3).
             10 CR-CELLS   PIC S9(3) COMP-3 OCCURS 2.
          05 CR-LAST       PIC X(3).
