      * Order record shared by several programs; :PFX: is replaced.
       01 :PFX:-REC.
          05 :PFX:-ID        PIC 9(6).
          05 :PFX:-AMOUNT    PIC S9(5)V99 COMP-3.
          05 XX-NOTE         PIC X(10).
          COPY "audit".
