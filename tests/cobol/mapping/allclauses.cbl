      $SET ANS85
       IDENTIFICATION DIVISION.
       PROGRAM-ID. ALL-CLAUSES.
       DATA DIVISION.
       LINKAGE SECTION.
       01 LK-REC.
          05 LK-NAME       PICTURE IS X(12).
          05 LK-CODE       PIC A(3).
          05 LK-AMOUNT     PIC S9(7)V99.
          05 LK-LEAD       PIC S9(3) SIGN IS LEADING.
          05 LK-LEADSEP    PIC S9(3) SIGN LEADING SEPARATE CHARACTER.
          05 LK-TRAILSEP   PIC S9(3)V9 TRAILING SEPARATE.
          05 LK-HUNDREDS   PIC 9(3)PP.
          05 LK-TINY       PIC PPP99.
          05 LK-RATE       PIC 999V9(2).
          05 LK-BIN1       PIC 9(2) COMP.
          05 LK-BIN2       PIC S9(4) BINARY.
          05 LK-BIN4       PIC S9(9) USAGE IS COMP-4.
          05 LK-BIN8       PIC 9(18) COMPUTATIONAL.
          05 LK-NAT5       PIC S9(5) COMP-5.
          05 LK-PACKED     PIC S9(7)V99 COMP-3.
          05 LK-PACKU      PIC 9(4) PACKED-DECIMAL.
          05 LK-FLOAT      COMP-1.
          05 LK-DOUBLE     USAGE COMP-2.
          05 LK-ALT REDEFINES LK-DOUBLE.
             10 LK-ALT-B   POINTER.
          05 FILLER        PIC X(3) VALUE SPACES.
          05               PIC X(2).
          05 LK-ITEMS OCCURS 3 TIMES.
             10 LK-QTY     PIC 9(3) VALUE 0.
                88 LK-NONE VALUE 0.
             10 LK-TAGS    PIC X(2) OCCURS 2.
             10 LK-INNER   OCCURS 2.
                15 LK-CELL PIC S9(3) COMP-3.
          05 LK-LAST       PIC X.
       77 LK-FLAG PIC X.
       01 LK-UNUSED PIC X(99).
       PROCEDURE DIVISION USING LK-FLAG, LK-REC.
           GOBACK.
